# The CPU benchmark's PyTorch engine: a child process of bench/cpu.ts that builds a nincc model's layers
# in torch.nn from its model.json and safetensors weights, and runs and times the cases it is sent.
# Protocol: one JSON object per line on stdin, one JSON reply per line on stdout (bench/cpu/torch-engine.ts).
# Timing happens here, around the call alone, as nincc's is around infer()/trainStep() in bench/cpu.ts.
import json
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn

DTYPES = {'F32': np.float32, 'F64': np.float64, 'I32': np.int32, 'I64': np.int64}


def read_safetensors(path):
    """name → float32 tensor; the format is an 8-byte little-endian header size, a JSON header, then the data."""
    with open(path, 'rb') as f:
        blob = f.read()
    (size,) = struct.unpack('<Q', blob[:8])
    header = json.loads(blob[8:8 + size])
    data = blob[8 + size:]
    tensors = {}
    for name, entry in header.items():
        if name == '__metadata__':
            continue
        start, end = entry['data_offsets']
        array = np.frombuffer(data[start:end], dtype=DTYPES[entry['dtype']]).reshape(entry['shape'])
        tensors[name] = torch.from_numpy(array.astype(np.float32))
    return tensors


class Graph(nn.Module):
    """A nincc chain opened from blocks: layer i reads the outputs at positions froms[i] (-1: the input)."""

    def __init__(self, modules, froms):
        super().__init__()
        self.layers = nn.ModuleList(modules)
        self.froms = froms

    def forward(self, x):
        values = []
        for module, sources in zip(self.layers, self.froms):
            inputs = [x if p < 0 else values[p] for p in sources]
            values.append(module(*inputs))
        return values[-1]


class Add(nn.Module):  # nn.CAddTable
    def forward(self, *xs):
        return sum(xs[1:], xs[0])


class Concat(nn.Module):  # nn.Concat(2): along channels
    def forward(self, *xs):
        return torch.cat(xs, 1)


def build(layers, weights):
    """torch.nn modules of a nincc chain, with its tensors: nn.Sequential for a plain chain, a Graph where it has
    blocks (residual adds, concats); what a PyTorch user would write for it."""
    modules = []
    froms = [layer.get('from', [i - 1]) for i, layer in enumerate(layers)]
    readers = [sum(i in f for f in froms) for i in range(len(layers))]
    flat = []  # whether each layer's output is flat features
    for i, layer in enumerate(layers):
        kind, a, name = layer['kind'], layer['attrs'], f"{layer['kind']}{layer['index']}"
        source = froms[i][0]
        is_flat = source >= 0 and flat[source]
        if kind == 'add':
            m = Add()
        elif kind == 'concat':
            m = Concat()
        elif kind == 'identity':
            m = nn.Identity()
        elif kind == 'conv':
            m = nn.Conv2d(a['nIn'], a['nOut'], (a['kH'], a['kW']), (a['dH'], a['dW']), (a['padH'], a['padW']), bias=a['bias'])
        elif kind == 'bn':
            make = nn.BatchNorm1d if is_flat else nn.BatchNorm2d
            m = make(a['nFeatures'], eps=a['eps'], momentum=a['momentum'], affine=a['affine'])
        elif kind == 'relu':
            # In place unless another layer still reads the value it would overwrite (or it is the input).
            m = nn.ReLU(inplace=source >= 0 and readers[source] == 1)
        elif kind in ('maxpool', 'avgpool'):
            args = ((a['kH'], a['kW']), (a['dH'], a['dW']), (a['padH'], a['padW']))
            m = nn.MaxPool2d(*args, ceil_mode=bool(a.get('ceil'))) if kind == 'maxpool' else nn.AvgPool2d(*args, ceil_mode=bool(a.get('ceil')), count_include_pad=True)
        elif kind == 'view':
            m, is_flat = nn.Flatten(1), True
        elif kind == 'linear':
            m = nn.Linear(a['nIn'], a['nOut'], bias=a['bias'])
        elif kind == 'dropout':
            m = nn.Dropout(a['p'])
        elif kind == 'logsoftmax':
            m = nn.LogSoftmax(1)
        elif kind == 'softmax':
            m = nn.Softmax(1)
        else:
            raise ValueError(f'{name}: {kind} is not in the PyTorch column yet')
        with torch.no_grad():
            for field, tensor in list(m.named_parameters()) + list(m.named_buffers()):
                key = f'{name}.{field}'
                if key in weights:
                    tensor.copy_(weights[key].reshape(tensor.shape))
                elif field != 'num_batches_tracked':
                    raise ValueError(f'{key}: not in the weights file')
        modules.append(m)
        flat.append(is_flat)
    if all(f == [i - 1] for i, f in enumerate(froms)):
        return nn.Sequential(*modules)
    return Graph(modules, froms)


def read_floats(path, shape):
    return torch.from_numpy(np.fromfile(path, dtype=np.float32).reshape(shape))


class Engine:
    def __init__(self):
        self.models = {}  # (model, layout) → nn.Module
        self.cases = {}  # id → a function that runs the case once

    def load(self, msg):
        torch.set_num_threads(msg['threads'])
        spec = json.load(open(msg['model']))['model']
        weights = read_safetensors(msg['weights'])
        for layout in ('nchw', 'channels_last'):
            m = build(spec['layers'], weights)
            if layout == 'channels_last':
                m = m.to(memory_format=torch.channels_last)
            self.models[(msg['name'], layout)] = m
        return {'torch': torch.__version__, 'threads': torch.get_num_threads(), 'mkldnn': torch.backends.mkldnn.is_available()}

    def images(self, msg):
        x = read_floats(msg['input'], [msg['batch']] + msg['shape'])
        return x.contiguous(memory_format=torch.channels_last) if msg['layout'] == 'channels_last' and x.dim() == 4 else x

    def infer(self, msg):
        """Eval-mode output for the agreement check, written as raw float32."""
        m = self.models[(msg['name'], msg['layout'])].eval()
        with torch.no_grad():
            y = m(self.images(msg))
        y.contiguous().numpy().astype(np.float32).tofile(msg['output'])
        return {}

    def case(self, msg):
        m = self.models[(msg['name'], msg['layout'])]
        x = self.images(msg)
        if msg['what'] == 'infer':
            def run():
                m.eval()
                with torch.no_grad():
                    m(x)
        else:
            y = torch.tensor(msg['labels'], dtype=torch.long)
            # As bench/cpu.ts's nincc step: forward, NLL loss, backward, SGD with momentum and weight decay at lr 0
            # (the weights, and so the work, stay the same from run to run).
            opt = torch.optim.SGD(m.parameters(), lr=0.0, momentum=msg['momentum'], weight_decay=msg['weightDecay'])

            def run():
                m.train()
                opt.zero_grad(set_to_none=True)
                loss = nn.functional.nll_loss(m(x), y)
                loss.backward()
                opt.step()
                return loss.item()
        self.cases[msg['id']] = run
        return {'loss': run()} if msg['what'] == 'train' else {}

    def time(self, msg):
        run = self.cases[msg['id']]
        seconds = []
        for _ in range(msg['runs']):
            t0 = time.perf_counter()
            run()
            seconds.append(time.perf_counter() - t0)
        return {'seconds': seconds}


def main():
    engine = Engine()
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            reply = getattr(engine, msg['op'])(msg)
            reply['ok'] = True
        except Exception as e:  # reported to bench/cpu.ts, which says which case failed
            reply = {'ok': False, 'error': f'{type(e).__name__}: {e}'}
        sys.stdout.write(json.dumps(reply) + '\n')
        sys.stdout.flush()


if __name__ == '__main__':
    main()

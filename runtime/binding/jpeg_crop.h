// Decoding one crop of a JPEG with libjpeg-turbo (jpeg_crop.cc): only the crop's rows and iMCU columns,
// optionally scaled in the DCT domain, mirrored while copied into a caller's interleaved RGB buffer.
// Plain C++ over libjpeg (no Node headers); jpeg_addon.cc exposes it to the decode workers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>

namespace nincc_jpeg {

// Damaged or unexpected data, with libjpeg's own words.
class JpegError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CropRequest {
  const uint8_t* jpeg;
  size_t jpegBytes;
  int scaleNum;          // the image is decoded at scaleNum/8 of its size (1..8), in the DCT domain
  int scaledWidth;       // the size the caller expects at that scale (a mismatch is an error)
  int scaledHeight;
  int x, y;              // the crop, in the scaled image
  int width, height;
  bool flip;             // mirror left-right
  uint8_t* out;          // height × width × 3 bytes, row-major
  size_t outBytes;
};

// false: a JPEG this decoder leaves to sharp (CMYK/YCCK), nothing written. Throws JpegError on bad data.
// One libjpeg decompressor per calling thread, created on first use and reused for every image.
bool decodeCrop(const CropRequest& request);

}  // namespace nincc_jpeg

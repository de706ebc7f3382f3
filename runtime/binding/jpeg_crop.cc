// libjpeg-turbo crop decoding (see jpeg_crop.h). libjpeg reports errors by calling error_exit, which must
// not return: it longjmps back to decodeInto, whose frame holds no C++ object with a destructor.
#include "jpeg_crop.h"

#include <csetjmp>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include <jpeglib.h>

namespace nincc_jpeg {
namespace {

struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void onError(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// A warning (corrupt data libjpeg decoded past) is kept, not printed: decodeCrop turns it into an error.
void onWarning(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
}

struct Decompressor {
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  std::vector<JSAMPLE> row;  // one scanline of the cropped columns, grown to the widest seen

  Decompressor() {
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = onError;
    err.pub.output_message = onWarning;
    err.message[0] = '\0';
    jpeg_create_decompress(&cinfo);
  }
  ~Decompressor() { jpeg_destroy_decompress(&cinfo); }
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;
};

enum class Outcome { ok, unsupported, error, sizeMismatch };

// Everything between setjmp and the last libjpeg call: no locals with destructors, none modified after setjmp.
Outcome decodeInto(Decompressor& d, const CropRequest& q, JDIMENSION* seenWidth, JDIMENSION* seenHeight) {
  jpeg_decompress_struct* cinfo = &d.cinfo;
  if (setjmp(d.err.jump)) {
    jpeg_abort_decompress(cinfo);
    return Outcome::error;
  }
  d.err.pub.num_warnings = 0;
  jpeg_mem_src(cinfo, q.jpeg, static_cast<unsigned long>(q.jpegBytes));
  jpeg_read_header(cinfo, TRUE);
  if (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK) {
    jpeg_abort_decompress(cinfo);
    return Outcome::unsupported;
  }
  // libvips sets neither the IDCT nor the upsampling, so libjpeg's defaults (ISLOW, fancy upsampling) are its too.
  cinfo->out_color_space = JCS_RGB;
  cinfo->scale_num = static_cast<unsigned int>(q.scaleNum);
  cinfo->scale_denom = 8;
  jpeg_start_decompress(cinfo);
  *seenWidth = cinfo->output_width;
  *seenHeight = cinfo->output_height;
  if (cinfo->output_width != JDIMENSION(q.scaledWidth) || cinfo->output_height != JDIMENSION(q.scaledHeight) ||
      q.x + q.width > q.scaledWidth || q.y + q.height > q.scaledHeight) {
    jpeg_abort_decompress(cinfo);
    return Outcome::sizeMismatch;
  }
  // The crop's columns widened to whole iMCUs: xoffset moves left to a boundary, width grows to cover the crop.
  // One column more on each side where the image has it: the chroma upsampler replicates the edge of the
  // decoded columns, so the crop's own edge columns need their neighbours to come out as in a full decode.
  const JDIMENSION left = q.x > 0 ? JDIMENSION(q.x - 1) : 0;
  const JDIMENSION right = std::min(JDIMENSION(q.x + q.width + 1), cinfo->output_width);
  JDIMENSION xoffset = left;
  JDIMENSION cropWidth = right - left;
  if (cropWidth < cinfo->output_width) jpeg_crop_scanline(cinfo, &xoffset, &cropWidth);
  else xoffset = 0;
  if (d.row.size() < size_t(cinfo->output_width) * 3) d.row.resize(size_t(cinfo->output_width) * 3);
  JSAMPROW rowPointer = d.row.data();
  // Whole iMCU rows above the crop are skipped (Huffman-decoded only); the few rows of the crop's first iMCU
  // row above it are decoded and dropped, so the upsampler sees the rows a full decode would.
#if JPEG_LIB_VERSION >= 70
  const JDIMENSION rowsPerImcu = JDIMENSION(cinfo->max_v_samp_factor * cinfo->min_DCT_v_scaled_size);
#else
  const JDIMENSION rowsPerImcu = JDIMENSION(cinfo->max_v_samp_factor * cinfo->min_DCT_scaled_size);
#endif
  const JDIMENSION skip = JDIMENSION(q.y) / rowsPerImcu * rowsPerImcu;
  if (skip > 0) jpeg_skip_scanlines(cinfo, skip);
  while (cinfo->output_scanline < JDIMENSION(q.y)) jpeg_read_scanlines(cinfo, &rowPointer, 1);
  const JSAMPLE* from = d.row.data() + size_t(JDIMENSION(q.x) - xoffset) * 3;
  for (int r = 0; r < q.height; ++r) {
    jpeg_read_scanlines(cinfo, &rowPointer, 1);
    uint8_t* to = q.out + size_t(r) * size_t(q.width) * 3;
    if (q.flip) {
      for (int j = 0; j < q.width; ++j) std::memcpy(to + size_t(j) * 3, from + size_t(q.width - 1 - j) * 3, 3);
    } else {
      std::memcpy(to, from, size_t(q.width) * 3);
    }
  }
  // The rows below the crop are never decoded; abort leaves the decompressor ready for the next image.
  jpeg_abort_decompress(cinfo);
  return d.err.pub.num_warnings > 0 ? Outcome::error : Outcome::ok;
}

}  // namespace

bool decodeCrop(const CropRequest& q) {
  if (q.scaleNum < 1 || q.scaleNum > 8) throw JpegError("scale must be 1/8 to 8/8, got " + std::to_string(q.scaleNum) + "/8");
  if (q.x < 0 || q.y < 0 || q.width < 1 || q.height < 1) throw JpegError("the crop has no pixels or starts before the image");
  if (q.outBytes < size_t(q.width) * size_t(q.height) * 3) throw JpegError("the output holds " + std::to_string(q.outBytes) + " bytes, the crop needs " + std::to_string(size_t(q.width) * size_t(q.height) * 3));
  thread_local Decompressor decompressor;
  JDIMENSION seenWidth = 0;
  JDIMENSION seenHeight = 0;
  switch (decodeInto(decompressor, q, &seenWidth, &seenHeight)) {
    case Outcome::ok:
      return true;
    case Outcome::unsupported:
      return false;
    case Outcome::sizeMismatch:
      throw JpegError("decoded at " + std::to_string(q.scaleNum) + "/8 the JPEG is " + std::to_string(seenWidth) + "×" + std::to_string(seenHeight) + ", expected " +
                      std::to_string(q.scaledWidth) + "×" + std::to_string(q.scaledHeight) + " holding a " + std::to_string(q.width) + "×" + std::to_string(q.height) + " crop at (" +
                      std::to_string(q.x) + ", " + std::to_string(q.y) + ")");
    case Outcome::error:
      break;
  }
  throw JpegError(std::string("libjpeg: ") + decompressor.err.message);
}

}  // namespace nincc_jpeg

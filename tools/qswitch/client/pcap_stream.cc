// tools/qswitch/client/pcap_stream.cc: see the header.
#include "tools/qswitch/client/pcap_stream.h"

#include <cstring>

namespace qswitch::tools {

namespace {

constexpr size_t kGlobalHeaderSize = 24;
constexpr size_t kRecordHeaderSize = 16;
constexpr uint32_t kMaxRecordSize = 256 * 1024;  // libpcap's largest snaplen for any link type

uint32_t load_u32(const char* p, bool swapped) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return swapped ? __builtin_bswap32(v) : v;
}

}  // namespace

bool PcapStreamCutter::feed(const char* data, size_t size) {
  if (!error_.empty()) return false;
  buf_.append(data, size);
  scan();
  return error_.empty();
}

void PcapStreamCutter::consume(size_t size) {
  if (size > ready_) size = ready_;
  buf_.erase(0, size);
  ready_ -= size;
}

void PcapStreamCutter::scan() {
  if (!have_header_) {
    if (buf_.size() < kGlobalHeaderSize) return;
    uint32_t magic;
    std::memcpy(&magic, buf_.data(), sizeof magic);
    if (magic == kPcapMagicMicro || magic == kPcapMagicNano) {
      swapped_ = false;
    } else if (__builtin_bswap32(magic) == kPcapMagicMicro ||
               __builtin_bswap32(magic) == kPcapMagicNano) {
      swapped_ = true;
    } else {
      error_ = "the stream does not start with a pcap header";
      return;
    }
    have_header_ = true;
    ready_ = kGlobalHeaderSize;
  }
  while (!limit_reached() && buf_.size() - ready_ >= kRecordHeaderSize) {
    const uint32_t caplen = load_u32(buf_.data() + ready_ + 8, swapped_);
    if (caplen > kMaxRecordSize) {
      error_ = "pcap record of " + std::to_string(caplen) + " bytes (over " +
               std::to_string(kMaxRecordSize) + "): not a pcap stream";
      return;
    }
    if (buf_.size() - ready_ < kRecordHeaderSize + caplen) return;
    ready_ += kRecordHeaderSize + caplen;
    ++records_;
  }
}

}  // namespace qswitch::tools

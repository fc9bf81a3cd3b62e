// tools/qswitch/client/pcap_stream.h: cutting a pcap byte stream (as the "capture" command sends
// it) into whole units, so a reader can stop anywhere and still have written a valid pcap file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace qswitch::tools {

// The pcap global header's magic numbers (microsecond and nanosecond timestamps).
inline constexpr uint32_t kPcapMagicMicro = 0xa1b2c3d4;
inline constexpr uint32_t kPcapMagicNano = 0xa1b23c4d;

// Cuts a pcap byte stream into whole units: the 24-byte global header, then records (16-byte
// header + caplen, in the stream's byte order as its magic says).
class PcapStreamCutter {
 public:
  // Appends bytes; returns false on a stream that is not pcap (error() says why).
  bool feed(const char* data, size_t size);
  // Bytes at the front of the buffer that form whole units, ready to write.
  size_t ready_size() const { return ready_; }
  const char* data() const { return buf_.data(); }
  // Drops `size` ready bytes (after writing them).
  void consume(size_t size);
  uint64_t record_count() const { return records_; }  // complete records seen so far
  // Limits ready_size() to the header and the first `max_records` records.
  void set_record_limit(uint64_t max_records) { limit_ = max_records; }
  bool limit_reached() const { return limit_ != 0 && records_ >= limit_; }
  const std::string& error() const { return error_; }

 private:
  void scan();

  std::string buf_;
  size_t ready_ = 0;  // whole units at the front of buf_
  bool have_header_ = false;
  bool swapped_ = false;
  uint64_t records_ = 0;
  uint64_t limit_ = 0;
  std::string error_;
};

}  // namespace qswitch::tools

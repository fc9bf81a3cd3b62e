// tests/support/temp_dir.h: a per-test temporary directory, removed with everything in it.
//
// Created with mkdtemp under /tmp (short, so unix socket paths stay far below the 108-byte
// sun_path limit). Move-only; the destructor removes the tree.
#pragma once

#include <string>

namespace qswitch::test_support {

class TempDir {
 public:
  // `prefix` becomes /tmp/<prefix>XXXXXX. path() is empty when creation failed.
  explicit TempDir(const std::string& prefix = "qswitch-test-");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace qswitch::test_support

// Helpers shared by the fuzz targets (fuzz/*_fuzz.cc): the readers under test take a path, so each
// input is written to one scratch file per process (in /dev/shm, else $TMPDIR; removed at exit) and
// read back.
#ifndef OPTOWER_FUZZ_FUZZ_FILE_H_
#define OPTOWER_FUZZ_FUZZ_FILE_H_

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace optower::fuzz {

// A file that holds the current input. Not thread-safe (libFuzzer runs one input at a time).
class ScratchFile {
 public:
  ScratchFile() {
    // /dev/shm (memory) first: on a disk, the truncate + write per input cost ~1 ms, 8x the parse.
    const char* tmp = std::getenv("TMPDIR");
    for (const char* dir : {"/dev/shm", tmp != nullptr && *tmp != '\0' ? tmp : "/tmp"}) {
      path_ = std::string(dir) + "/optower-fuzz-XXXXXX";
      fd_ = ::mkstemp(path_.data());
      if (fd_ >= 0) break;
    }
    if (fd_ < 0) {
      std::perror("optower fuzz: mkstemp");
      std::abort();
    }
  }
  ~ScratchFile() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }

  // Replaces the file's content by data[0, size); returns its path.
  const std::string& Write(const uint8_t* data, size_t size) {
    if (::ftruncate(fd_, 0) != 0) std::abort();
    size_t done = 0;
    while (done < size) {
      const ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
    return path_;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

// Stops the run with a message when a property of an accepted input does not hold: libFuzzer
// reports the abort as a crash and saves the input.
inline void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "optower fuzz: property violated: %s\n", what);
    std::abort();
  }
}

}  // namespace optower::fuzz

#endif  // OPTOWER_FUZZ_FUZZ_FILE_H_

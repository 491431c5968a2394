// A progress line on stderr for long operations (loading, writing checkpoints, benchmarks):
// redrawn in place on a terminal, a few plain lines otherwise so logs stay readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace r1 {

class Progress {
 public:
  // total <= 0: unknown total (shows a count, no bar). quiet: print nothing.
  Progress(std::string label, double total, bool quiet = false);
  ~Progress();
  void Update(double done, const std::string& detail = "");
  void Finish(const std::string& detail = "");

 private:
  void Draw(bool final, const std::string& detail);
  std::string label_;
  double total_, done_ = 0;
  bool quiet_, tty_, finished_ = false, drawn_ = false;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace r1

#include "r1/core/progress.h"

#include <unistd.h>

#include <cstdio>

namespace r1 {

Progress::Progress(std::string label, double total, bool quiet)
    : label_(std::move(label)),
      total_(total),
      quiet_(quiet),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  // Unwinding from an error: end the half-drawn line instead of claiming completion.
  if (!finished_ && !quiet_ && tty_ && drawn_) std::fputc('\n', stderr);
}

void Progress::Update(double done, const std::string& detail) {
  done_ = done;
  if (quiet_) return;
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    Draw(false, detail);
  } else if (total_ > 0) {
    const int decile = static_cast<int>(10 * done_ / total_);
    if (decile != last_decile_) {
      last_decile_ = decile;
      Draw(false, detail);
    }
  }
}

void Progress::Finish(const std::string& detail) {
  if (finished_) return;
  finished_ = true;
  if (total_ > 0) done_ = total_;
  if (!quiet_) Draw(true, detail);
}

void Progress::Draw(bool final, const std::string& detail) {
  drawn_ = true;
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string line = label_;
  if (total_ > 0) {
    const double frac = done_ / total_;
    const int width = 30, filled = static_cast<int>(frac * width);
    line += " [" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%5.1f%%", 100 * frac);
    line += buf;
    if (!final && frac > 0.01) {
      std::snprintf(buf, sizeof buf, "  ETA %.0fs", secs / frac - secs);
      line += buf;
    }
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "  %.1fs", secs);
  line += buf;
  if (!detail.empty()) line += "  " + detail;
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace r1

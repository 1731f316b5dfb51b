#include "mvadapter/core/progress.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "test_support.h"

namespace mva {
namespace {

TEST(Progress, WritesNothingWhenTheStreamIsNotATerminal) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  {
    Progress progress("epoch 1/5", 4, file);
    EXPECT_FALSE(progress.active());
    for (int64_t i = 1; i <= 4; ++i) progress.update(i);
    progress.finish();
  }  // the destructor must not write either
  std::fflush(file);
  EXPECT_EQ(std::ftell(file), 0L) << "a redirected stream must stay empty";
  std::fclose(file);
}

/// A pseudo-terminal: `slave` is a terminal stream for Progress, `master` reads what it shows.
struct Pty {
  int master = -1;
  std::FILE* slave = nullptr;
  bool open() {
    master = ::posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0) return false;
    slave = std::fopen(::ptsname(master), "w");
    return slave != nullptr;
  }
  /// Closes the terminal side and returns everything written to it.
  std::string drain() {
    std::fclose(slave);
    std::string out;
    char buf[512];
    ::fcntl(master, F_SETFL, O_NONBLOCK);
    for (ssize_t n; (n = ::read(master, buf, sizeof buf)) > 0;) out.append(buf, n);
    ::close(master);
    return out;
  }
};

TEST(Progress, DisabledIsSilentEvenOnATerminal) {
  Pty pty;
  if (!pty.open()) GTEST_SKIP() << "no pseudo-terminal available";
  {
    Progress progress("x", 3, pty.slave, /*enabled=*/false);
    EXPECT_FALSE(progress.active());
    progress.update(3);
    progress.finish();
  }
  EXPECT_EQ(pty.drain(), "");
}

TEST(Progress, RedrawsInPlaceAndEndsTheLineOnATerminal) {
  Pty pty;
  if (!pty.open()) GTEST_SKIP() << "no pseudo-terminal available";
  {
    Progress progress("lab", 4, pty.slave);
    EXPECT_TRUE(progress.active());
    progress.update(4);  // completion always redraws, whatever the time since the last draw
    progress.finish();
  }
  const std::string out = pty.drain();
  EXPECT_NE(out.find("\rlab  4/4 100%"), std::string::npos) << "got: " << out;
  EXPECT_EQ(out.find("ETA"), std::string::npos) << "no ETA once complete; got: " << out;
  EXPECT_NE(out.find('\n'), std::string::npos) << "finish() must end the line; got: " << out;
}

TEST(ProgressFormat, EtaIsMinutesSecondsUnderAnHourAndHoursAbove) {
  EXPECT_EQ(format_eta(7.0), "0:07");
  EXPECT_EQ(format_eta(427.0), "7:07");
  EXPECT_EQ(format_eta(426.6), "7:07");  // rounded to whole seconds
  EXPECT_EQ(format_eta(3599.0), "59:59");
  EXPECT_EQ(format_eta(3725.0), "1:02:05");
  EXPECT_EQ(format_eta(90061.0), "25:01:01");
  EXPECT_EQ(format_eta(-1.0), "?:??");
}

TEST(ProgressFormat, RateHasThreeFiguresAndTurnsIntoSecondsPerItemBelowOne) {
  EXPECT_EQ(format_rate(12.34), "12.3 it/s");
  EXPECT_EQ(format_rate(1.5), "1.50 it/s");
  EXPECT_EQ(format_rate(1234.4), "1234 it/s");
  EXPECT_EQ(format_rate(0.25), "4.00 s/it");
  EXPECT_EQ(format_rate(0.0), "? it/s");
}

TEST(ProgressFormat, LineShowsCountPercentRateAndEta) {
  // 37 of 120 in 3 s: 12.33 it/s, 83 left -> 6.7 s -> "0:07"; 37/120 = 30.8 % -> 31 %.
  EXPECT_EQ(format_progress_line("epoch 1/5", 37, 120, 37, 3.0),
            "epoch 1/5   37/120  31% 12.3 it/s ETA 0:07");
  // A resumed epoch: 20 items were done before timing began, so the rate counts 10 in 2 s.
  EXPECT_EQ(format_progress_line("e", 30, 40, 10, 2.0), "e  30/40  75% 5.00 it/s ETA 0:02");
  // Nothing counted yet: no rate, no ETA.
  EXPECT_EQ(format_progress_line("x", 0, 10, 0, 0.0), "x   0/10   0%");
  // 99.9 % must not read as 100 % before the end.
  EXPECT_EQ(format_progress_line("x", 999, 1000, 999, 999.0),
            "x   999/1000  99% 1.00 it/s ETA 0:01");
  EXPECT_EQ(format_progress_line("x", 1000, 1000, 1000, 500.0), "x  1000/1000 100% 2.00 it/s");
  // Unknown total: a count and a rate only.
  EXPECT_EQ(format_progress_line("scan", 5, 0, 5, 2.0), "scan  5 2.50 it/s");
}

}  // namespace
}  // namespace mva

// TerminalState: the terminal-risk state every instance shares (issue "Terminal risk"; the
// Redis one is sinks/redis_terminal_state.h; the design is docs/terminal-risk.md).
//
// A terminal's transactions come through every partition of the transactions topic, and its
// fraud reports through every partition of the reports topic, so each instance writes what it
// reads into the shared state and computes from a local copy of it (TerminalCopy), refreshed
// in the background.
//
// Idempotence. Transactions are counted per input partition in contiguous ranges of offsets,
// and the shared state records, per partition, the offset counted up to: a range is applied
// only from there on, so the records read again after a crash or a rebalance are not counted
// twice, and an assignment starts counting where the state says (counted_until). A report is
// counted once per transaction, on its earliest report day.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "features/terminal_copy.h"

namespace vigil::features {

// The terminal of one record's transaction and its UTC day; an empty terminal for a record
// that counts nothing (undecodable).
struct TerminalCount {
  std::string terminal;
  int64_t day = 0;
};

// A confirmed fraud: transaction `transaction_id` of day `tx_day` on `terminal`, reported on
// day `report_day`.
struct TerminalReport {
  std::string transaction_id;
  std::string terminal;
  int64_t tx_day = 0;
  int64_t report_day = 0;
};

class TerminalState {
 public:
  virtual ~TerminalState() = default;

  // For each of `partitions` (of the transactions topic), the first offset not counted yet,
  // or written or queued: counting goes on from there. -1 when the state has nothing of the
  // partition. All in one question, so that an unreachable state costs one timeout per
  // assignment, not one per partition. Blocking (assignment time, the consumer thread).
  virtual Result<std::vector<int64_t>> counted_until(const std::vector<int32_t>& partitions) = 0;
  // Counts the records [from, from + records.size()) of `partition`: records before the
  // offset already counted are skipped (here or by the shared state). Never blocks: written
  // by the state's own thread. Consumer thread.
  virtual void count(int32_t partition, int64_t from, std::vector<TerminalCount> records) = 0;
  // Records handed to count() and not written yet, over all partitions; the consumer pauses
  // its partitions while it is at max_backlog(). Any thread.
  virtual size_t backlog() const = 0;
  virtual size_t max_backlog() const = 0;

  // Confirmed frauds, applied before this returns (blocking: the reports consumer commits
  // their offsets afterwards). Returns how many changed the counts.
  virtual Result<size_t> report(const std::vector<TerminalReport>& reports) = 0;

  // The newest transaction day read by this instance: the copy holds the days that windows
  // of transactions up to two days later reach. Any thread.
  virtual void saw_day(int64_t day) = 0;
  // The latest copy (null before the first) and a number that changes with each new copy.
  // Any thread.
  virtual std::shared_ptr<const TerminalCopy> copy() const = 0;
  // Reads a fresh copy now, on the caller's thread, holding the days of a transaction of
  // `day` (blocking: for a copy that is missing or lacks the day, at start or when the
  // stream reaches a new day before the refresher did). False when Redis did not answer.
  virtual bool refresh(int64_t day) = 0;
  virtual uint64_t copy_version() const = 0;
};

}  // namespace vigil::features

#include "consumers/offset_tracker.h"

#include <algorithm>

#include "common/status.h"

namespace vigil::consumers {

void OffsetTracker::EntryRing::push_back(const Entry& e) {
  if (size_ == buf_.size()) {
    std::vector<Entry> bigger(std::max<size_t>(64, buf_.size() * 2));
    for (size_t i = 0; i < size_; ++i) bigger[i] = (*this)[i];
    buf_.swap(bigger);
    head_ = 0;
  }
  buf_[(head_ + size_) & (buf_.size() - 1)] = e;
  ++size_;
}

void OffsetTracker::EntryRing::pop_front() {
  head_ = (head_ + 1) & (buf_.size() - 1);
  --size_;
}

size_t OffsetTracker::EntryRing::lower_bound(Offset o) const {
  size_t lo = 0, hi = size_;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if ((*this)[mid].offset < o) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

uint64_t OffsetTracker::assign(PartitionId p) {
  std::lock_guard<std::mutex> lock(mu_);
  PartitionState& s = partitions_[p];
  s = PartitionState{};
  s.generation = next_generation_++;
  return s.generation;
}

void OffsetTracker::revoke(PartitionId p) {
  std::lock_guard<std::mutex> lock(mu_);
  partitions_.erase(p);
}

AckToken OffsetTracker::track(PartitionId p, Offset offset) {
  AckToken t;
  t.partition = p;
  t.offset = offset;
  std::lock_guard<std::mutex> lock(mu_);
  bool regressed = false;
  track_locked(t, regressed);
  return t;
}

size_t OffsetTracker::track(AckToken* tokens, size_t n, size_t* regressions) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t tracked = 0;
  for (size_t i = 0; i < n; ++i) {
    bool regressed = false;
    tracked += track_locked(tokens[i], regressed) ? 1 : 0;
    if (regressed && regressions != nullptr) ++*regressions;
  }
  return tracked;
}

bool OffsetTracker::track_locked(AckToken& t, bool& regressed) {
  t.generation = 0;
  auto it = partitions_.find(t.partition);
  if (it == partitions_.end()) return false;  // revoked while the record was on its way
  PartitionState& s = it->second;
  const std::optional<Offset> last =
      s.pending.empty() ? (s.next ? std::optional<Offset>(*s.next - 1) : std::nullopt)
                        : std::optional<Offset>(s.pending.back().offset);
  if (last && t.offset <= *last) {
    // The position moved back: start over from here. Dropping the record instead would let
    // the commit stay above records never scored.
    regressed = true;
    s = PartitionState{};
    s.generation = next_generation_++;
  }
  s.pending.push_back({t.offset, false});
  ++s.not_done;
  t.generation = s.generation;
  return true;
}

bool OffsetTracker::owns(const scoring::RecordPosition& r) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = partitions_.find(r.partition);
  return it != partitions_.end() && it->second.generation == r.generation;
}

bool OffsetTracker::ack(const AckToken& t) {
  std::lock_guard<std::mutex> lock(mu_);
  return ack_locked(t);
}

void OffsetTracker::acknowledge(const scoring::RecordPosition* records, size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < n; ++i) ack_locked(records[i]);
}

void OffsetTracker::hold(const scoring::RecordPosition& r, const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = partitions_.find(r.partition);
  if (it == partitions_.end() || it->second.generation != r.generation) return;  // not ours now
  PartitionState& s = it->second;
  const size_t i = s.pending.lower_bound(r.offset);
  if (i == s.pending.size() || s.pending[i].offset != r.offset || s.pending[i].done) {
    return;  // has an outcome, or was never tracked
  }
  s.held[r.offset] = why;
}

std::vector<OffsetTracker::Hold> OffsetTracker::held() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Hold> out;
  for (const auto& [p, s] : partitions_) {
    if (!s.held.empty()) out.push_back({p, s.held.begin()->first, s.held.begin()->second});
  }
  return out;
}

bool OffsetTracker::ack_locked(const AckToken& t) {
  auto it = partitions_.find(t.partition);
  if (it == partitions_.end() || it->second.generation != t.generation) return false;
  PartitionState& s = it->second;
  const size_t i = s.pending.lower_bound(t.offset);
  if (i == s.pending.size() || s.pending[i].offset != t.offset || s.pending[i].done) return false;
  s.pending[i].done = true;
  --s.not_done;
  s.held.erase(t.offset);
  while (!s.pending.empty() && s.pending.front().done) {
    s.next = s.pending.front().offset + 1;
    s.pending.pop_front();
  }
  return true;
}

std::optional<Offset> OffsetTracker::committable(PartitionId p) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = partitions_.find(p);
  if (it == partitions_.end()) return std::nullopt;
  const PartitionState& s = it->second;
  // Everything below the first pending record is delivered (or was committed before).
  if (!s.pending.empty()) return s.pending.front().offset;
  return s.next;
}

size_t OffsetTracker::in_flight(PartitionId p) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = partitions_.find(p);
  return it == partitions_.end() ? 0 : it->second.not_done;
}

size_t OffsetTracker::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [p, s] : partitions_) n += s.not_done;
  return n;
}

std::vector<PartitionId> OffsetTracker::partitions() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<PartitionId> out;
  for (const auto& [p, s] : partitions_) out.push_back(p);
  return out;
}

}  // namespace vigil::consumers

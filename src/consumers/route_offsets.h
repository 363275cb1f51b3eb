// RouteOffsets: the offset trackers of every route (input topic, kafka.routes), one each,
// behind the one Acknowledger the delivery stage reports to. A record's RecordPosition::route
// picks its tracker: a batch of one model may hold records of several routes (two topics
// scored by the same model), so acknowledge() hands each run of one route to its tracker.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "consumers/offset_tracker.h"
#include "delivery/acknowledger.h"

namespace vigil::consumers {

class RouteOffsets final : public delivery::Acknowledger {
 public:
  explicit RouteOffsets(size_t routes = 1);

  size_t size() const { return trackers_.size(); }
  OffsetTracker& operator[](size_t route) { return *trackers_.at(route); }
  const OffsetTracker& operator[](size_t route) const { return *trackers_.at(route); }
  // Records tracked and without an outcome, over every route. Any thread.
  size_t in_flight() const;

  // delivery::Acknowledger. A record of a route that does not exist is ignored (and owned
  // by nobody).
  void acknowledge(const scoring::RecordPosition* records, size_t n) override;
  void hold(const scoring::RecordPosition& record, const std::string& why) override;
  bool owns(const scoring::RecordPosition& record) const override;

 private:
  std::vector<std::unique_ptr<OffsetTracker>> trackers_;  // fixed at construction
};

}  // namespace vigil::consumers

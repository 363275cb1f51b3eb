#include "consumers/route_offsets.h"

namespace vigil::consumers {

RouteOffsets::RouteOffsets(size_t routes) {
  trackers_.reserve(routes);
  for (size_t i = 0; i < routes; ++i) trackers_.push_back(std::make_unique<OffsetTracker>());
}

size_t RouteOffsets::in_flight() const {
  size_t n = 0;
  for (const auto& t : trackers_) n += t->in_flight();
  return n;
}

void RouteOffsets::acknowledge(const scoring::RecordPosition* records, size_t n) {
  scoring::for_each_route_run(
      records, n, [](const scoring::RecordPosition& r) { return r.route; },
      [&](uint16_t route, const scoring::RecordPosition* run, size_t count) {
        if (route < trackers_.size()) trackers_[route]->acknowledge(run, count);
      });
}

void RouteOffsets::hold(const scoring::RecordPosition& record, const std::string& why) {
  if (record.route < trackers_.size()) trackers_[record.route]->hold(record, why);
}

bool RouteOffsets::owns(const scoring::RecordPosition& record) const {
  return record.route < trackers_.size() && trackers_[record.route]->owns(record);
}

}  // namespace vigil::consumers

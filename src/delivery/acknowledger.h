// The seams between the consumer and the delivery stage, in both directions, so that
// src/consumers needs nothing of the delivery stage's implementation (nor of the sinks):
//
//   Acknowledger    the delivery stage reports each record's final outcome to whoever owns
//                   the consumed records' offsets (the consumer's OffsetTracker);
//   DeadLetterSink  the consumer hands records it cannot decode to the delivery stage.
//
// Every Kafka record handed to the delivery stage ends in exactly one of:
//   acknowledged  its score, or its dead-letter record, was acknowledged by Kafka: its offset
//                 may be committed;
//   held          it has no outcome for now (Kafka refused the score for good and the
//                 dead-letter write failed too): its partition must not be committed past it,
//                 and the owner pauses the partition until a later acknowledge() of the same
//                 record lifts the hold (the stage keeps retrying the dead-letter write);
//   dropped       shutdown came first, or its partition was revoked (owns() turned false)
//                 while it waited for a retry: neither acknowledged nor held, so it is
//                 consumed again by the partition's owner (at-least-once).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "scoring/request.h"

namespace vigil::delivery {

class Acknowledger {
 public:
  virtual ~Acknowledger() = default;
  // The records have their final outcome. Any thread; called once per delivered batch.
  virtual void acknowledge(const scoring::RecordPosition* records, size_t n) = 0;
  // `record` cannot get an outcome for now, because `why`. Any thread.
  virtual void hold(const scoring::RecordPosition& record, const std::string& why) = 0;
  // Whether `record`'s partition is still assigned under the generation it was consumed in.
  // A record that waits for a retry (a held dead letter, a timed-out score) is dropped once
  // this turns false: its partition moved, and its new owner consumes it again. Any thread.
  virtual bool owns(const scoring::RecordPosition& record) const = 0;
};

class DeadLetterSink {
 public:
  virtual ~DeadLetterSink() = default;
  // Sends `source`'s record to the dead-letter topic with vigil.error=`reason` and
  // vigil.error_message=`message`; takes the record. Its outcome is reported through the
  // Acknowledger like a score's. Called on the consumer thread.
  virtual void dead_letter(scoring::SourceRecord source, std::string_view reason,
                           std::string message) = 0;
};

}  // namespace vigil::delivery

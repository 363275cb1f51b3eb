// EntityTable: one shard of EntityWindows' entities, keyed by id, looked up by a hash the
// caller computed once.
//
// Why not a library map: at a million entities every lookup misses the cache, and a record
// costs one miss per level (where the key is, the entity, its newest events), each waiting on
// the one before. A slot's place follows from the hash alone, so a caller that knows which
// ids come next (the keys of the records just fetched) can prefetch every level ahead of time
// (slot_address(), find_by_hash()); boost::unordered_flat_map keeps that place to itself.
//
// Open addressing, linear probing, a power-of-two number of 16-byte slots (hash, owned node),
// at most 3/4 full. Nodes never move: a pointer to a value stays valid until its entry is
// erased. erase() shifts the probe run back (no tombstones); erase_if() rebuilds the table at
// the size its survivors need, so memory shrinks with them. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil::features {

template <typename Value>
class EntityTable {
 public:
  struct Node {
    std::string id;
    Value value;
  };

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // The entry of `id` (whose hash is `hash`), or nullptr.
  Node* find(std::string_view id, uint64_t hash) const {
    const size_t i = index_of(id, hash);
    return i == kNone ? nullptr : slots_[i].node.get();
  }

  // The first entry whose hash is `hash`, without comparing ids: for prefetching, where a
  // collision only fetches the wrong entry.
  const Node* find_by_hash(uint64_t hash) const {
    if (slots_.empty()) return nullptr;
    for (size_t i = home(hash);; i = (i + 1) & mask()) {
      const Slot& s = slots_[i];
      if (!s.node) return nullptr;
      if (s.hash == hash) return s.node.get();
    }
  }

  // Where the probe for `hash` starts (nullptr when the table is empty).
  const void* slot_address(uint64_t hash) const {
    return slots_.empty() ? nullptr : &slots_[home(hash)];
  }

  // Adds `id`, which must not be in the table, with a default value.
  Node* insert(std::string id, uint64_t hash) {
    if ((size_ + 1) * 4 > slots_.size() * 3) rehash(std::max<size_t>(16, slots_.size() * 2));
    auto node = std::make_unique<Node>(Node{std::move(id), Value{}});
    Node* raw = node.get();
    place(hash, std::move(node));
    ++size_;
    return raw;
  }

  // Removes the entry of `id`; false when there is none.
  bool erase(std::string_view id, uint64_t hash) {
    size_t i = index_of(id, hash);
    if (i == kNone) return false;
    slots_[i] = Slot{};
    // Backward shift: a later entry of the run moves into the hole unless its home lies
    // cyclically in (hole, its place], where it would no longer be found from its home.
    for (size_t j = (i + 1) & mask(); slots_[j].node; j = (j + 1) & mask()) {
      const size_t h = home(slots_[j].hash);
      const bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
      if (!stays) {
        slots_[i] = std::move(slots_[j]);
        i = j;
      }
    }
    --size_;
    return true;
  }

  // Removes every entry for which `drop(node)` is true; returns how many.
  template <typename Pred>
  size_t erase_if(Pred drop) {
    size_t dropped = 0;
    for (Slot& s : slots_) {
      if (s.node && drop(static_cast<const Node&>(*s.node))) {
        s.node.reset();
        ++dropped;
      }
    }
    if (dropped > 0) {
      size_ -= dropped;
      rehash(capacity_for(size_));
    }
    return dropped;
  }

  // Room for `n` entries without growing.
  void reserve(size_t n) {
    if (capacity_for(n) > slots_.size()) rehash(capacity_for(n));
  }

  template <typename F>
  void for_each(F f) const {
    for (const Slot& s : slots_) {
      if (s.node) f(static_cast<const Node&>(*s.node));
    }
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    std::unique_ptr<Node> node;  // nullptr: empty
  };

  static constexpr size_t kNone = ~size_t{0};
  // The slot holding `id`, or kNone.
  size_t index_of(std::string_view id, uint64_t hash) const {
    if (slots_.empty()) return kNone;
    for (size_t i = home(hash);; i = (i + 1) & mask()) {
      const Slot& s = slots_[i];
      if (!s.node) return kNone;
      if (s.hash == hash && s.node->id == id) return i;
    }
  }

  // Fibonacci hashing: the top bits of the product, so that ids whose hashes share their low
  // bits (the ones that chose the shard) still spread over the table.
  size_t home(uint64_t hash) const {
    return static_cast<size_t>((hash * 0x9E3779B97F4A7C15ULL) >> shift_);
  }
  size_t mask() const { return slots_.size() - 1; }
  static size_t capacity_for(size_t n) {
    if (n == 0) return 0;
    size_t c = 16;
    while (n * 4 > c * 3) c *= 2;
    return c;
  }
  void place(uint64_t hash, std::unique_ptr<Node> node) {
    size_t i = home(hash);
    while (slots_[i].node) i = (i + 1) & mask();
    slots_[i] = Slot{hash, std::move(node)};
  }
  void rehash(size_t capacity) {
    std::vector<Slot> old = std::move(slots_);
    slots_ = std::vector<Slot>(capacity);
    int bits = 0;
    while ((size_t{1} << bits) < capacity) ++bits;
    shift_ = 64 - bits;
    for (Slot& s : old) {
      if (s.node) place(s.hash, std::move(s.node));
    }
  }

  std::vector<Slot> slots_;
  size_t size_ = 0;
  int shift_ = 64;
};

}  // namespace vigil::features

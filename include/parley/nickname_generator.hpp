// SPDX-License-Identifier: MIT
// Assigns adjective-animal nicknames (`clever-otter`, then `clever-otter-2`, ...) when a member names none.
#pragma once

#include "name_rules.hpp"
#include "random_source.hpp"

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace parley {

// Every word is 3..9 lowercase letters, so `adjective-animal-NNNNNNNNNN` stays within
// the 32-character nickname limit for any suffix a room could ever need.
inline constexpr std::array<std::string_view, 72> nickname_adjectives{
    "able",    "agile",   "amber",   "ancient", "arctic",  "ardent",  "azure",   "bold",    "brave",
    "bright",  "brisk",   "calm",    "candid",  "cheery",  "civic",   "clever",  "cosmic",  "crisp",
    "curious", "daring",  "deft",    "dusty",   "eager",   "early",   "earnest", "fabled",  "fair",
    "fleet",   "fluent",  "frank",   "gentle",  "gilded",  "glad",    "golden",  "grand",   "hardy",
    "hazel",   "honest",  "humble",  "ivory",   "jade",    "jolly",   "keen",    "kind",    "lively",
    "loyal",   "lucid",   "lucky",   "mellow",  "merry",   "mighty",  "misty",   "modest",  "nimble",
    "noble",   "olive",   "placid",  "plucky",  "polite",  "proud",   "quiet",   "quick",   "rapid",
    "ruby",    "rustic",  "sage",    "serene",  "sharp",   "silver",  "steady",  "sunny",   "witty"};

inline constexpr std::array<std::string_view, 72> nickname_animals{
    "alpaca",  "badger",  "beaver",  "bison",   "bobcat",  "camel",   "caribou", "cheetah", "condor",
    "corgi",   "cougar",  "coyote",  "crane",   "dingo",   "dolphin", "donkey",  "eagle",   "egret",
    "falcon",  "ferret",  "finch",   "fox",     "gazelle", "gecko",   "gibbon",  "gopher",  "heron",
    "hippo",   "ibex",    "ibis",    "iguana",  "impala",  "jackal",  "jaguar",  "koala",   "lemur",
    "lynx",    "macaw",   "magpie",  "marmot",  "marten",  "meerkat", "mink",    "moose",   "narwhal",
    "newt",    "ocelot",  "okapi",   "orca",    "osprey",  "otter",   "owl",     "panda",   "panther",
    "parrot",  "pelican", "penguin", "puffin",  "quail",   "rabbit",  "raven",   "robin",   "salmon",
    "seal",    "sparrow", "stoat",   "swan",    "tapir",   "toucan",  "walrus",  "wombat",  "zebra"};

// Picks a random pair, then `-2`, `-3`, ... until `is_taken` says no: allocation
// never fails, because a room has finitely many members. `is_taken` receives the
// case-folded candidate.
template <class Random, class IsTaken>
[[nodiscard]] std::string allocate_nickname(Random&& random, IsTaken&& is_taken) {
  const auto& adjective = nickname_adjectives[random_below(random, nickname_adjectives.size())];
  const auto& animal = nickname_animals[random_below(random, nickname_animals.size())];
  std::string base;
  base.reserve(adjective.size() + 1 + animal.size());
  base.append(adjective).append("-").append(animal);
  if (!is_taken(base)) return base;
  for (std::size_t n = 2;; ++n) {
    std::string candidate = base + "-" + std::to_string(n);
    if (!is_taken(candidate)) return candidate;
  }
}

}  // namespace parley

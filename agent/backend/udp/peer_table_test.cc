#include "agent/backend/udp/peer_table.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace weft::agent::udp {
namespace {

IPv4Net Net(const char* s) { return *IPv4Net::Parse(s); }
IPv4Addr Ip(const char* s) { return *IPv4Addr::Parse(s); }
uint32_t U(const char* s) { return Ip(s).value(); }

TEST(PeerTableTest, FindsTheMostSpecificSubnet) {
  PeerTable t({{Net("10.1.7.0/24"), Ip("192.0.2.12")},
               {Net("10.1.0.0/16"), Ip("192.0.2.99")},
               {Net("10.1.7.128/25"), Ip("192.0.2.13")}});
  EXPECT_EQ(t.size(), 3u);
  uint32_t peer = 0;
  ASSERT_TRUE(t.Lookup(U("10.1.7.3"), &peer));
  EXPECT_EQ(peer, U("192.0.2.12"));
  ASSERT_TRUE(t.Lookup(U("10.1.7.200"), &peer));
  EXPECT_EQ(peer, U("192.0.2.13"));
  ASSERT_TRUE(t.Lookup(U("10.1.9.1"), &peer));
  EXPECT_EQ(peer, U("192.0.2.99"));
  EXPECT_FALSE(t.Lookup(U("10.2.0.1"), &peer));
  EXPECT_FALSE(PeerTable().Lookup(U("10.1.7.3"), &peer));
}

TEST(PeerTableTest, FirstRouteOfASubnetWins) {
  PeerTable t({{Net("10.1.7.0/24"), Ip("192.0.2.12")}, {Net("10.1.7.0/24"), Ip("192.0.2.50")}});
  uint32_t peer = 0;
  ASSERT_TRUE(t.Lookup(U("10.1.7.1"), &peer));
  EXPECT_EQ(peer, U("192.0.2.12"));
  EXPECT_EQ(t.size(), 1u);
}

TEST(PeerTableTest, OnlyPeersPublicIpsAreKnownSources) {
  PeerTable t({{Net("10.1.7.0/24"), Ip("192.0.2.12")},
               {Net("10.1.8.0/24"), Ip("192.0.2.13")},
               {Net("10.1.9.0/24"), Ip("192.0.2.13")}});
  EXPECT_TRUE(t.KnownSource(U("192.0.2.12")));
  EXPECT_TRUE(t.KnownSource(U("192.0.2.13")));
  EXPECT_FALSE(t.KnownSource(U("192.0.2.14")));
  EXPECT_FALSE(t.KnownSource(U("10.1.7.1"))) << "an inner address is no source";
  EXPECT_FALSE(PeerTable().KnownSource(U("192.0.2.12"))) << "no lease, no source";
}

TEST(PeerTablePublisherTest, OldTableLivesWhileAReaderHoldsIt) {
  PeerTablePublisher pub(2);
  pub.Publish(std::make_unique<PeerTable>(std::vector<PeerRoute>{{Net("10.1.7.0/24"), Ip("192.0.2.12")}}));
  EXPECT_EQ(pub.Reclaim(), 0u);  // nobody was inside: the empty first table is gone
  const PeerTable* held = pub.Enter(0);
  pub.Publish(std::make_unique<PeerTable>());
  EXPECT_EQ(pub.Reclaim(), 1u);  // reader 0 may still use `held`
  uint32_t peer = 0;
  EXPECT_TRUE(held->Lookup(U("10.1.7.9"), &peer));
  pub.Exit(0);
  EXPECT_EQ(pub.Reclaim(), 0u);
  // The next Enter sees the new table.
  EXPECT_FALSE(pub.Enter(0)->Lookup(U("10.1.7.9"), &peer));
  pub.Exit(0);
}

TEST(PeerTablePublisherTest, ReadersAlwaysSeeOneWholeTable) {
  // Table g maps each of 64 subnets to the address g: a reader that sees two
  // values within one Enter/Exit, or a freed table, fails (or ASan would).
  constexpr int kReaders = 3;
  PeerTablePublisher pub(kReaders);
  std::atomic<bool> stop{false};
  std::atomic<int> torn{0};
  std::atomic<long> reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      while (!stop.load()) {
        const PeerTable* t = pub.Enter(r);
        uint32_t first = 0, v = 0;
        bool have = false;
        for (uint32_t s = 0; s < 64; ++s) {
          if (!t->Lookup((10u << 24) | (1u << 16) | (s << 8) | 1, &v)) continue;
          if (have && v != first) torn.fetch_add(1);
          first = v;
          have = true;
        }
        pub.Exit(r);
        reads.fetch_add(1);
      }
    });
  }
  for (uint32_t g = 1; g <= 2000; ++g) {
    std::vector<PeerRoute> routes;
    for (uint32_t s = 0; s < 64; ++s) {
      routes.push_back({*IPv4Net::Make(IPv4Addr::FromUint32((10u << 24) | (1u << 16) | (s << 8)), 24),
                        IPv4Addr::FromUint32(g)});
    }
    pub.Publish(std::make_unique<PeerTable>(routes));
  }
  while (reads.load() < 1000) std::this_thread::yield();
  stop.store(true);
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(pub.Reclaim(), 0u);
}

}  // namespace
}  // namespace weft::agent::udp

#include "tools/index_settings.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/status_matchers.h"

namespace vecdb::tools {
namespace {

using ::testing::HasSubstr;
using ::vecdb::testing::StatusIs;

IndexSettings Kind(const std::string& kind) {
  IndexSettings settings;
  settings.kind = kind;
  return settings;
}

TEST(ParseIndexKindTest, AcceptsEveryKindInAnyCase) {
  EXPECT_EQ(*ParseIndexKind("flat"), v1::FLAT);
  EXPECT_EQ(*ParseIndexKind("hnsw"), v1::HNSW);
  EXPECT_EQ(*ParseIndexKind("ivf_flat"), v1::IVF_FLAT);
  EXPECT_EQ(*ParseIndexKind("IVF_PQ"), v1::IVF_PQ);
  EXPECT_EQ(*ParseIndexKind("sq8"), v1::SQ8);
  EXPECT_EQ(*ParseIndexKind("Hnsw_Sq8"), v1::HNSW_SQ8);
}

TEST(ParseIndexKindTest, UnknownKindListsTheValidOnes) {
  EXPECT_THAT(ParseIndexKind("ivf"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unknown index 'ivf'; expected one of flat, "
                                 "hnsw, ivf_flat, ivf_pq, sq8, hnsw_sq8")));
}

TEST(MakeIndexConfigTest, DefaultsToHnswWithServerDefaults) {
  absl::StatusOr<v1::IndexConfig> config = MakeIndexConfig(IndexSettings());

  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->kind(), v1::HNSW);
  EXPECT_EQ(config->m(), 0u);
  EXPECT_EQ(config->ef_search(), 0u);
}

TEST(MakeIndexConfigTest, CopiesParametersOfIvfPq) {
  IndexSettings settings = Kind("ivf_pq");
  settings.nlist = 512;
  settings.nprobe = 8;
  settings.pq_m = 32;
  settings.pq_bits = 6;

  absl::StatusOr<v1::IndexConfig> config = MakeIndexConfig(settings);

  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->kind(), v1::IVF_PQ);
  EXPECT_EQ(config->nlist(), 512u);
  EXPECT_EQ(config->nprobe(), 8u);
  EXPECT_EQ(config->pq_m(), 32u);
  EXPECT_EQ(config->pq_bits(), 6u);
}

TEST(MakeIndexConfigTest, GivenZeroStillCountsAsGiven) {
  IndexSettings settings = Kind("flat");
  settings.m = 0;

  EXPECT_THAT(MakeIndexConfig(settings),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--m does not apply to index flat")));
}

// Every parameter paired with every kind it does not apply to.
TEST(MakeIndexConfigTest, RejectsEveryParameterOutsideItsKinds) {
  struct Case {
    std::string kind;
    std::optional<uint32_t> IndexSettings::*parameter;
    std::string message;
  };
  const std::string graph = " (only to hnsw and hnsw_sq8)";
  const std::string ivf = " (only to ivf_flat and ivf_pq)";
  const std::string pq = " (only to ivf_pq)";
  const std::vector<Case> cases = {
      {"flat", &IndexSettings::m, "--m does not apply to index flat" + graph},
      {"flat", &IndexSettings::ef_construction,
       "--ef_construction does not apply to index flat" + graph},
      {"flat", &IndexSettings::ef_search,
       "--ef_search does not apply to index flat" + graph},
      {"flat", &IndexSettings::nlist,
       "--nlist does not apply to index flat" + ivf},
      {"flat", &IndexSettings::nprobe,
       "--nprobe does not apply to index flat" + ivf},
      {"flat", &IndexSettings::pq_m,
       "--pq_m does not apply to index flat" + pq},
      {"flat", &IndexSettings::pq_bits,
       "--pq_bits does not apply to index flat" + pq},
      {"hnsw", &IndexSettings::nlist,
       "--nlist does not apply to index hnsw" + ivf},
      {"hnsw", &IndexSettings::nprobe,
       "--nprobe does not apply to index hnsw" + ivf},
      {"hnsw", &IndexSettings::pq_m,
       "--pq_m does not apply to index hnsw" + pq},
      {"hnsw", &IndexSettings::pq_bits,
       "--pq_bits does not apply to index hnsw" + pq},
      {"ivf_flat", &IndexSettings::m,
       "--m does not apply to index ivf_flat" + graph},
      {"ivf_flat", &IndexSettings::ef_construction,
       "--ef_construction does not apply to index ivf_flat" + graph},
      {"ivf_flat", &IndexSettings::ef_search,
       "--ef_search does not apply to index ivf_flat" + graph},
      {"ivf_flat", &IndexSettings::pq_m,
       "--pq_m does not apply to index ivf_flat" + pq},
      {"ivf_flat", &IndexSettings::pq_bits,
       "--pq_bits does not apply to index ivf_flat" + pq},
      {"ivf_pq", &IndexSettings::m,
       "--m does not apply to index ivf_pq" + graph},
      {"ivf_pq", &IndexSettings::ef_construction,
       "--ef_construction does not apply to index ivf_pq" + graph},
      {"ivf_pq", &IndexSettings::ef_search,
       "--ef_search does not apply to index ivf_pq" + graph},
      {"sq8", &IndexSettings::m, "--m does not apply to index sq8" + graph},
      {"sq8", &IndexSettings::ef_construction,
       "--ef_construction does not apply to index sq8" + graph},
      {"sq8", &IndexSettings::ef_search,
       "--ef_search does not apply to index sq8" + graph},
      {"sq8", &IndexSettings::nlist,
       "--nlist does not apply to index sq8" + ivf},
      {"sq8", &IndexSettings::nprobe,
       "--nprobe does not apply to index sq8" + ivf},
      {"sq8", &IndexSettings::pq_m, "--pq_m does not apply to index sq8" + pq},
      {"sq8", &IndexSettings::pq_bits,
       "--pq_bits does not apply to index sq8" + pq},
      {"hnsw_sq8", &IndexSettings::nlist,
       "--nlist does not apply to index hnsw_sq8" + ivf},
      {"hnsw_sq8", &IndexSettings::nprobe,
       "--nprobe does not apply to index hnsw_sq8" + ivf},
      {"hnsw_sq8", &IndexSettings::pq_m,
       "--pq_m does not apply to index hnsw_sq8" + pq},
      {"hnsw_sq8", &IndexSettings::pq_bits,
       "--pq_bits does not apply to index hnsw_sq8" + pq},
  };
  for (const Case& test : cases) {
    IndexSettings settings = Kind(test.kind);
    settings.*test.parameter = 8;
    EXPECT_THAT(MakeIndexConfig(settings),
                StatusIs(absl::StatusCode::kInvalidArgument, test.message))
        << test.message;
  }
}

TEST(MakeIndexConfigTest, NamesEveryMisplacedParameter) {
  IndexSettings settings = Kind("hnsw");
  settings.nlist = 10;
  settings.pq_bits = 4;

  EXPECT_THAT(
      MakeIndexConfig(settings),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "--nlist does not apply to index hnsw (only to ivf_flat and "
               "ivf_pq); --pq_bits does not apply to index hnsw (only to "
               "ivf_pq)"));
}

TEST(MakeIndexConfigTest, HnswParametersApplyToHnswSq8) {
  IndexSettings settings = Kind("hnsw_sq8");
  settings.m = 24;
  settings.ef_construction = 80;
  settings.ef_search = 32;

  absl::StatusOr<v1::IndexConfig> config = MakeIndexConfig(settings);

  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->m(), 24u);
  EXPECT_EQ(config->ef_construction(), 80u);
  EXPECT_EQ(config->ef_search(), 32u);
}

v1::IndexConfig IvfPqConfig() {
  v1::IndexConfig config;
  config.set_kind(v1::IVF_PQ);
  config.set_nlist(256);
  config.set_nprobe(16);
  config.set_pq_m(16);
  config.set_pq_bits(8);
  return config;
}

TEST(MakeUpdatedIndexConfigTest, SameKindKeepsParametersNotGiven) {
  IndexSettings settings;
  settings.nprobe = 64;

  absl::StatusOr<v1::IndexConfig> config =
      MakeUpdatedIndexConfig(IvfPqConfig(), settings);

  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->kind(), v1::IVF_PQ);
  EXPECT_EQ(config->nlist(), 256u);
  EXPECT_EQ(config->nprobe(), 64u);
  EXPECT_EQ(config->pq_m(), 16u);
  EXPECT_EQ(config->pq_bits(), 8u);
}

TEST(MakeUpdatedIndexConfigTest, NewKindStartsFromDefaults) {
  IndexSettings settings = Kind("ivf_flat");
  settings.nlist = 1024;

  absl::StatusOr<v1::IndexConfig> config =
      MakeUpdatedIndexConfig(IvfPqConfig(), settings);

  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->kind(), v1::IVF_FLAT);
  EXPECT_EQ(config->nlist(), 1024u);
  EXPECT_EQ(config->nprobe(), 0u);
  EXPECT_EQ(config->pq_m(), 0u);
}

TEST(MakeUpdatedIndexConfigTest, ParameterMustFitTheCurrentKind) {
  IndexSettings settings;
  settings.ef_search = 100;

  EXPECT_THAT(MakeUpdatedIndexConfig(IvfPqConfig(), settings),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--ef_search does not apply to index "
                                 "ivf_pq")));
}

TEST(MakeUpdatedIndexConfigTest, NothingGivenIsRejected) {
  EXPECT_THAT(MakeUpdatedIndexConfig(IvfPqConfig(), IndexSettings()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("nothing to change")));
}

TEST(CheckIndexUpdateTest, ChecksGivenKindWithoutCurrentConfig) {
  IndexSettings settings = Kind("sq8");
  settings.nprobe = 4;

  EXPECT_THAT(CheckIndexUpdate(settings),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--nprobe does not apply to index sq8")));
  EXPECT_THAT(CheckIndexUpdate(Kind("lsh")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unknown index 'lsh'")));
}

TEST(CheckSearchTuningTest, RejectsOptionsOfOtherKinds) {
  SearchTuning nprobe;
  nprobe.nprobe = true;
  SearchTuning ef_search;
  ef_search.ef_search = true;
  SearchTuning rerank;
  rerank.rerank = true;

  EXPECT_THAT(CheckSearchTuning(v1::HNSW, "docs", nprobe),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "--nprobe does not apply to collection 'docs', whose "
                       "index is hnsw (only to ivf_flat and ivf_pq)"));
  EXPECT_THAT(CheckSearchTuning(v1::IVF_PQ, "docs", ef_search),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--ef_search does not apply")));
  EXPECT_THAT(CheckSearchTuning(v1::IVF_FLAT, "docs", rerank),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("its scores are exact already")));
  EXPECT_THAT(CheckSearchTuning(v1::FLAT, "docs", rerank),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--rerank does not apply")));
}

TEST(CheckSearchTuningTest, AcceptsOptionsOfTheKind) {
  SearchTuning ivf;
  ivf.nprobe = true;
  ivf.rerank = true;
  SearchTuning graph;
  graph.ef_search = true;
  graph.rerank = true;

  EXPECT_TRUE(CheckSearchTuning(v1::IVF_PQ, "docs", ivf).ok());
  EXPECT_TRUE(CheckSearchTuning(v1::HNSW_SQ8, "docs", graph).ok());
  EXPECT_TRUE(CheckSearchTuning(v1::SQ8, "docs", SearchTuning()).ok());
}

TEST(FormatIndexTest, ShowsParametersOfTheKind) {
  EXPECT_EQ(FormatIndex(IvfPqConfig()),
            "ivf_pq (nlist 256, nprobe 16, pq_m 16, pq_bits 8)");
  v1::IndexConfig flat;
  flat.set_kind(v1::FLAT);
  EXPECT_EQ(FormatIndex(flat), "flat");
  EXPECT_EQ(FormatIndexParameters(flat), "-");
  EXPECT_EQ(FormatIndexParameters(IvfPqConfig()),
            "nlist=256 nprobe=16 pq_m=16 pq_bits=8");
}

TEST(FormatIndexTest, LeavesOutParametersLeftToDefaults) {
  v1::IndexConfig config;
  config.set_kind(v1::IVF_FLAT);
  config.set_nlist(64);

  EXPECT_EQ(FormatIndex(config), "ivf_flat (nlist 64)");
}

TEST(DescribeIndexStateTest, ExplainsEachState) {
  v1::CollectionInfo info;
  *info.mutable_index() = IvfPqConfig();
  info.set_point_count(500);
  info.set_training_threshold(10240);

  info.set_index_state(v1::EXACT);
  EXPECT_EQ(DescribeIndexState(info),
            "exact: searches scan every vector until the collection has "
            "10240 points to train the ivf_pq index on (it has 500)");
  info.set_index_state(v1::BUILDING);
  EXPECT_THAT(DescribeIndexState(info),
              HasSubstr("building: the ivf_pq index is being built in the "
                        "background"));
  info.set_index_state(v1::READY);
  EXPECT_EQ(DescribeIndexState(info),
            "ready: the ivf_pq index serves searches");
  EXPECT_EQ(IndexStateName(v1::BUILDING), "building");
}

TEST(FormatBytesTest, PicksBinaryUnit) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(uint64_t{35} << 20), "35.0 MiB");
  EXPECT_EQ(FormatBytes(uint64_t{3} << 30), "3.0 GiB");
}

}  // namespace
}  // namespace vecdb::tools

#include "usage/prometheus_source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace poolguard::usage {
namespace {

using ::testing::HasSubstr;

TEST(PrometheusQueries, ProfileDefaults) {
  auto hikari = defaultQueries(policy::Profile::kSpringHikari);
  EXPECT_EQ(hikari.connections, R"(sum(hikaricp_connections{namespace="$namespace",pod=~"$workload-.*"}))");
  EXPECT_EQ(hikari.pending, R"(sum(hikaricp_connections_pending{namespace="$namespace",pod=~"$workload-.*"}))");
  auto bouncer = defaultQueries(policy::Profile::kPgBouncer);
  EXPECT_THAT(bouncer.connections, HasSubstr("pgbouncer_pools_server_active_connections"));
  EXPECT_THAT(bouncer.pending, HasSubstr("pgbouncer_pools_client_waiting_connections"));
  for (auto p : {policy::Profile::kGoSQL, policy::Profile::kPgxpool, policy::Profile::kSQLAlchemy,
                 policy::Profile::kNodePostgres, policy::Profile::kGeneric}) {
    EXPECT_TRUE(defaultQueries(p).empty());
  }
}

TEST(PrometheusQueries, PolicyQueriesOverrideDefaultsAndConfigureOtherProfiles) {
  policy::Usage usage;
  usage.prometheus = policy::PrometheusSource{"http://prom:9090", "", ""};
  EXPECT_TRUE(prometheusConfigured(usage, policy::Profile::kSpringHikari));
  EXPECT_FALSE(prometheusConfigured(usage, policy::Profile::kGoSQL));
  usage.prometheus->connectionsQuery = "sum(go_sql_open_connections{namespace=\"$namespace\"})";
  EXPECT_TRUE(prometheusConfigured(usage, policy::Profile::kGoSQL));
  auto q = effectiveQueries(*usage.prometheus, policy::Profile::kSpringHikari);
  EXPECT_EQ(q.connections, usage.prometheus->connectionsQuery);
  EXPECT_THAT(q.pending, HasSubstr("hikaricp_connections_pending"));
  usage.prometheus->url = "";
  EXPECT_FALSE(prometheusConfigured(usage, policy::Profile::kGoSQL));
}

TEST(RenderQuery, SubstitutesNamespaceAndWorkload) {
  EXPECT_EQ(renderQuery(R"(sum(x{namespace="$namespace",pod=~"$workload-.*"}))", "shop", "checkout"),
            R"(sum(x{namespace="shop",pod=~"checkout-.*"}))");
  EXPECT_EQ(renderQuery("$workload/$workload $namespace$", "n", "w"), "w/w n$");
}

TEST(RenderQuery, EscapesQuotesAndBackslashes) {
  EXPECT_EQ(renderQuery(R"(x{a="$workload"})", "n", R"(we"ird\name)"), R"(x{a="we\"ird\\name"})");
  EXPECT_EQ(escapePromqlString("a\nb\tc"), "a\\nb\\tc");
}

TEST(RenderQuery, SubstitutedValuesAreNotExpandedAgain) {
  EXPECT_EQ(renderQuery("$namespace|$workload", "$workload", "$namespace"), "$workload|$namespace");
}

Result<std::optional<double>> parse(const std::string& body, int status = 200) {
  return parseQueryResponse(status, body, "q");
}

TEST(ParseQueryResponse, VectorWithOneSample) {
  auto r = parse(R"({"status":"success","data":{"resultType":"vector","result":[
      {"metric":{},"value":[1700000000.123,"12"]}]}})");
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_TRUE(*r);
  EXPECT_DOUBLE_EQ(**r, 12.0);
}

TEST(ParseQueryResponse, SeveralSeriesAreSummed) {
  auto r = parse(R"({"status":"success","data":{"resultType":"vector","result":[
      {"metric":{"pod":"a"},"value":[1,"2.5"]},{"metric":{"pod":"b"},"value":[1,"3"]}]}})");
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->value(), 5.5);
}

TEST(ParseQueryResponse, Scalar) {
  auto r = parse(R"({"status":"success","data":{"resultType":"scalar","result":[1,"7"]}})");
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->value(), 7.0);
}

TEST(ParseQueryResponse, EmptyVectorIsNoDataNotZero) {
  auto r = parse(R"({"status":"success","data":{"resultType":"vector","result":[]}})");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
}

TEST(ParseQueryResponse, NaNIsNoData) {
  auto r = parse(R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}})");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  // A NaN series beside a real one leaves the real value.
  r = parse(R"({"status":"success","data":{"resultType":"vector","result":[
      {"metric":{},"value":[1,"NaN"]},{"metric":{},"value":[1,"4"]}]}})");
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->value(), 4.0);
}

TEST(ParseQueryResponse, InfinityIsAnError) {
  auto r = parse(R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"+Inf"]}]}})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason(), prometheus_reasons::kQueryFailed);
  EXPECT_THAT(r.error().message(), HasSubstr("+Inf"));
}

TEST(ParseQueryResponse, ErrorStatusCarriesPrometheusMessage) {
  auto r = parse(R"({"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected \"}\""})", 400);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason(), prometheus_reasons::kQueryFailed);
  EXPECT_EQ(r.error().httpStatus(), 400);
  EXPECT_THAT(r.error().message(), HasSubstr("bad_data: 1:5: parse error"));
  EXPECT_FALSE(r.error().retryable());

  r = parse(R"({"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"})", 503);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kTimeout);
}

TEST(ParseQueryResponse, NonJsonErrorStatus) {
  auto r = parse("<html>502 Bad Gateway</html>", 502);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason(), prometheus_reasons::kQueryFailed);
  EXPECT_THAT(r.error().message(), HasSubstr("HTTP 502"));
  EXPECT_TRUE(r.error().retryable());
}

TEST(ParseQueryResponse, Malformed) {
  for (const std::string& body : {
           std::string("not json"),
           std::string(R"({"data":{}})"),
           std::string(R"({"status":"success"})"),
           std::string(R"({"status":"success","data":{"resultType":"vector","result":{}}})"),
           std::string(R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}})"),
           std::string(R"({"status":"success","data":{"resultType":"vector","result":[{"value":[1,"abc"]}]}})"),
           std::string(R"({"status":"success","data":{"resultType":"vector","result":[{"value":[1,2]}]}})"),
           std::string(R"({"status":"success","data":{"resultType":"scalar","result":[1]}})"),
       }) {
    auto r = parse(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().reason(), prometheus_reasons::kMalformed) << body;
  }
}

TEST(ParseQueryResponse, RangeResultsAreRejected) {
  auto r = parse(R"({"status":"success","data":{"resultType":"matrix","result":[]}})");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), HasSubstr("matrix"));
}

TEST(PrometheusClient, UnreachableServerIsATypedError) {
  PrometheusClient client(std::chrono::seconds(2));
  // Port 1 on loopback: nothing listens there, the connection is refused at once.
  auto r = client.query("http://127.0.0.1:1", "up");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason(), prometheus_reasons::kUnreachable);
  EXPECT_THAT(r.error().message(), HasSubstr("prometheus http://127.0.0.1:1"));
}

}  // namespace
}  // namespace poolguard::usage

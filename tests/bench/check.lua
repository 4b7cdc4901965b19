-- wrk script: POST /v1/consent/check with a JSON body and a bearer token.
-- TOKEN and CONTACT come from the environment (bench_audit.sh sets them).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = '{"contact_id":"' .. os.getenv("CONTACT") .. '","purpose":"marketing","channel":"email"}'

done = function(summary, latency, requests)
   io.write(string.format("RESULT rps=%.1f p50_ms=%.2f p99_ms=%.2f errors=%d\n",
      summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
      latency:percentile(99) / 1000,
      summary.errors.status + summary.errors.connect + summary.errors.read +
      summary.errors.write + summary.errors.timeout))
end

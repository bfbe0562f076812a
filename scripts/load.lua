-- wrk script for scripts/load.sh: POSTs pre-signed NextGen deliveries to /webhook.
--
-- wrk's Lua has no HMAC, so load.sh signs the requests beforehand and passes the file's path
-- in the environment: NEXTGEN_LOAD_REQUESTS, one request per line, "<NextGen-Signature>\t<body>".
-- Each thread takes its own share of the requests (line n goes to thread n mod threads),
-- formats them once in init() and cycles through them: two threads never send the same event
-- at the same moment, which the server would rightly answer 409 (a concurrent redelivery).

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local requests = {}
local index = 1
statuses = {}

function init(args)
   local path = os.getenv("NEXTGEN_LOAD_REQUESTS")
   local file = path and io.open(path, "r")
   if not file then
      error("NEXTGEN_LOAD_REQUESTS must name the file of signed requests written by load.sh")
   end
   -- bench-http.sh sends the same requests to the bare /echo route as well.
   local target = os.getenv("NEXTGEN_LOAD_PATH") or "/webhook"
   local threads_total = tonumber(os.getenv("NEXTGEN_LOAD_THREADS") or "2")
   local line_no = 0
   for line in file:lines() do
      line_no = line_no + 1
      local signature, body = line:match("^([^\t]+)\t(.*)$")
      if signature and (line_no - 1) % threads_total == (id or 0) then
         requests[#requests + 1] = wrk.format("POST", target, {
            ["Content-Type"] = "application/json",
            ["NextGen-Signature"] = signature,
         }, body)
      end
   end
   file:close()
   if #requests == 0 then
      error("no signed request in " .. path)
   end
   index = 1
end

function request()
   local formatted = requests[index]
   index = index % #requests + 1
   return formatted
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   -- Machine-readable lines, read by load.sh.
   io.write(string.format("LOAD requests %d\n", summary.requests))
   io.write(string.format("LOAD duration_s %.3f\n", summary.duration / 1e6))
   io.write(string.format("LOAD rps %.1f\n", summary.requests / (summary.duration / 1e6)))
   for _, p in ipairs({ 50, 90, 99, 99.9 }) do
      io.write(string.format("LOAD p%s_ms %.3f\n", tostring(p), latency:percentile(p) / 1000))
   end
   io.write(string.format("LOAD max_ms %.3f\n", latency.max / 1000))
   io.write(string.format("LOAD mean_ms %.3f\n", latency.mean / 1000))
   local errors = summary.errors
   io.write(string.format("LOAD socket_errors connect=%d read=%d write=%d timeout=%d\n",
      errors.connect, errors.read, errors.write, errors.timeout))
   io.write(string.format("LOAD non2xx %d\n", errors.status))
   local totals = {}
   for _, thread in ipairs(threads) do
      local counts = thread:get("statuses") or {}
      for status, count in pairs(counts) do
         totals[status] = (totals[status] or 0) + count
      end
   end
   local parts = {}
   for status, count in pairs(totals) do
      parts[#parts + 1] = string.format("%s=%d", tostring(status), count)
   end
   table.sort(parts)
   io.write("LOAD statuses " .. table.concat(parts, " ") .. "\n")
end

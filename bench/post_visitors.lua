-- wrk script: each request posts a form for the next prepared visitor, never one twice.
--
-- VISITORS names a file with one visitor a line: their Cookie header, a tab, the form body
-- (urlencoded, with their own form token and email). POST_PATH is where the form posts.
-- Each of wrk's threads takes every n-th line. A thread that runs out sends GET /, the cached
-- schedule page (the bench then says it prepared too few: every line was posted).
-- done() prints "posted <n> redirected <n> other <n> spares <n>": the posts sent, the answers
-- that redirected (302/303), the posts answered otherwise, and the spare GETs.

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  local stride = tonumber(os.getenv("WRK_THREADS"))
  local path = os.getenv("POST_PATH")
  local line_number = 0
  prepared = {}
  for line in io.lines(os.getenv("VISITORS")) do
    if line_number % stride == thread_index then
      local cookie, body = line:match("^([^\t]*)\t(.*)$")
      table.insert(prepared, wrk.format("POST", path, {
        ["Cookie"] = cookie,
        ["Content-Type"] = "application/x-www-form-urlencoded",
      }, body))
    end
    line_number = line_number + 1
  end
  next_visitor = 1
  spares = 0
  posted = 0
  redirected = 0
  other = 0
  other_status = 0
  spare = wrk.format("GET", "/")
end

function request()
  local prepared_request = prepared[next_visitor]
  if prepared_request == nil then
    spares = spares + 1
    return spare
  end
  prepared[next_visitor] = nil
  next_visitor = next_visitor + 1
  posted = posted + 1
  return prepared_request
end

function response(status, headers, body)
  if status == 302 or status == 303 then
    redirected = redirected + 1
  else  -- (a spare GET's answer too: done() takes those away)
    other = other + 1
    if status ~= 200 then other_status = status end
  end
end

function done(summary, latency, requests)
  local total_posted, total_redirected, total_other, total_spares = 0, 0, 0, 0
  local statuses = ""
  for _, thread in ipairs(threads) do
    if thread:get("other_status") ~= 0 then statuses = statuses .. " " .. thread:get("other_status") end
    total_posted = total_posted + thread:get("posted")
    total_redirected = total_redirected + thread:get("redirected")
    total_other = total_other + thread:get("other")
    total_spares = total_spares + thread:get("spares")
  end
  io.write(string.format(
    "posted %d redirected %d other %d spares %d\n",
    total_posted, total_redirected, total_other - total_spares, total_spares
  ))
  if statuses ~= "" then io.write("other statuses:" .. statuses .. "\n") end
end

-- orchestrate's traffic split inside nginx: the weights and backend addresses change without a
-- reload (a reload closes idle keep-alive client connections). The rendered configuration runs
-- this file as the body of a function in init_by_lua_block and keeps the table it returns.
--
-- The split in force is one value of the shared dict `orchestrate_traffic`, in the text the
-- controller POSTs to /traffic on the control socket and keeps in the state file:
--
--     generation 7
--     mode sticky
--     backend blue 127.0.0.1:8001 75
--     backend green 10.0.0.11:8002,10.0.0.12:8002 25
--
-- A colour has one address or several (the tasks of a Swarm service on several hosts), separated
-- by commas; a request goes to one of them at random, and to the next one when it cannot connect.
--
-- A split of two colours may interleave (Resources/interleave.lua): `interleave PERCENT WINDOW SEED
-- EXPERIMENT` samples PERCENT % of the users by a hash of SEED and the user id; their lists come
-- from both colours, merged, and their events are credited to the colour that placed the movie
-- within WINDOW seconds, counted per EXPERIMENT.
--
-- A split may shadow (Resources/shadow.lua): `shadow COLOUR PERCENT EXPERIMENT` also sends PERCENT %
-- of the /recommend requests to COLOUR, a backend at weight 0, after the live answer was sent, and
-- compares both answers, counted per EXPERIMENT. No user is ever answered by COLOUR.
--
-- A worker that finds no split (nginx just started, by the controller, by hand or after a crash)
-- loads the state file, so nginx serves the last applied split, never nothing.
local balancer = require("ngx.balancer")

local M = {}

local DICT = "orchestrate_traffic"
local KEY = "split"
local MAX_BACKENDS = 8
local MAX_PEERS = 32
-- How many more peers a request may try when it cannot connect (the other tasks of its colour,
-- then the other colour).
local MAX_MORE_TRIES = 3

local state_file = nil
local config_id = ""

-- This worker's parsed split and the text it was parsed from.
local cached_text, cached_split = nil, nil
-- When this worker last tried the state file while the dict was empty.
local last_load_attempt = 0

-- Checks and parses a split; returns it or nil and what is wrong. Nothing reaches the balancer
-- that this function did not accept.
local function parse(text)
    if type(text) ~= "string" or text == "" then
        return nil, "empty split"
    end
    if #text > 8192 then
        return nil, "split longer than 8192 bytes"
    end
    local split = { backends = {}, serving = {} }
    local colors = {}
    local number = 0
    for line in text:gmatch("[^\n]+") do
        number = number + 1
        local fields = {}
        for field in line:gmatch("[^ ]+") do
            fields[#fields + 1] = field
        end
        local kind = fields[1]
        if kind == "generation" and #fields == 2 and not split.generation then
            local generation = fields[2]:match("^[1-9][0-9]?[0-9]?[0-9]?[0-9]?[0-9]?[0-9]?[0-9]?[0-9]?$")
            if not generation then
                return nil, "line " .. number .. ": the generation must be a positive integer"
            end
            split.generation = tonumber(generation)
        elseif kind == "mode" and #fields == 2 and not split.mode then
            if fields[2] ~= "sticky" and fields[2] ~= "weighted" then
                return nil, "line " .. number .. ": the mode must be sticky or weighted"
            end
            split.mode = fields[2]
        elseif kind == "interleave" and #fields == 5 and not split.interleave then
            local percent, window, seed, experiment = fields[2], fields[3], fields[4], fields[5]
            if not percent:match("^[0-9]+$") or #percent > 3 or tonumber(percent) < 1 or tonumber(percent) > 100 then
                return nil, "line " .. number .. ": the interleaved share is 1 to 100 percent of the users"
            end
            if not window:match("^[0-9]+$") or #window > 6 or tonumber(window) < 1 or tonumber(window) > 86400 then
                return nil, "line " .. number .. ": the credit window is 1 to 86400 seconds"
            end
            for _, token in ipairs({ seed, experiment }) do
                if #token > 100 or not token:match("^[A-Za-z0-9._-]+$") then
                    return nil, "line " .. number .. ": the seed and the experiment are 1 to 100 letters, digits, '.', '_' or '-'"
                end
            end
            split.interleave = { percent = tonumber(percent), window = tonumber(window), seed = seed, experiment = experiment }
        elseif kind == "shadow" and #fields == 4 and not split.shadow then
            local color, percent, experiment = fields[2], fields[3], fields[4]
            if not percent:match("^[0-9]+$") or #percent > 3 or tonumber(percent) < 1 or tonumber(percent) > 100 then
                return nil, "line " .. number .. ": the shadowed share is 1 to 100 percent of the requests"
            end
            if #experiment > 100 or not experiment:match("^[A-Za-z0-9._-]+$") then
                return nil, "line " .. number .. ": the experiment is 1 to 100 letters, digits, '.', '_' or '-'"
            end
            split.shadow = { color = color, percent = tonumber(percent), experiment = experiment }
        elseif kind == "backend" and #fields == 4 then
            local color, address, weight = fields[2], fields[3], fields[4]
            if #color > 63 or not color:match("^[A-Za-z0-9_-]+$") then
                return nil, "line " .. number .. ": a colour is 1 to 63 letters, digits, '_' or '-'"
            end
            if colors[color] then
                return nil, "line " .. number .. ": colour " .. color .. " appears twice"
            end
            colors[color] = true
            local peers = {}
            for peer_address in (address .. ","):gmatch("([^,]*),") do
                local a, b, c, d, port = peer_address:match("^([0-9]+)%.([0-9]+)%.([0-9]+)%.([0-9]+):([0-9]+)$")
                port = tonumber(port)
                if not a or #peer_address > 21 or tonumber(a) > 255 or tonumber(b) > 255 or tonumber(c) > 255 or tonumber(d) > 255
                    or port < 1 or port > 65535 then
                    return nil, "line " .. number .. ": an address of " .. color .. " must be IPv4:port (several separated by commas)"
                end
                peers[#peers + 1] = { color = color, host = a .. "." .. b .. "." .. c .. "." .. d, port = port, address = peer_address }
            end
            if #peers > MAX_PEERS then
                return nil, "line " .. number .. ": at most " .. MAX_PEERS .. " addresses for " .. color
            end
            if not weight:match("^[0-9]+$") or #weight > 3 or tonumber(weight) > 100 then
                return nil, "line " .. number .. ": the weight of " .. color .. " must be 0 to 100"
            end
            local backend = { color = color, peers = peers, address = address, weight = tonumber(weight) }
            split.backends[#split.backends + 1] = backend
            if backend.weight > 0 then
                split.serving[#split.serving + 1] = backend
            end
        else
            return nil, "line " .. number .. " is not understood (expected generation N, mode M, backend COLOUR IPv4:PORT WEIGHT, "
                .. "interleave PERCENT WINDOW SEED EXPERIMENT or shadow COLOUR PERCENT EXPERIMENT once each)"
        end
    end
    if not split.generation or not split.mode then
        return nil, "the split needs a generation line and a mode line"
    end
    if #split.backends > MAX_BACKENDS then
        return nil, "at most " .. MAX_BACKENDS .. " backends"
    end
    local total = 0
    for _, backend in ipairs(split.serving) do
        total = total + backend.weight
    end
    if #split.serving == 0 or total ~= 100 then
        return nil, "the weights of the serving backends must add up to 100, got " .. total
    end
    -- Buckets go to the colours in name order, so that the same user keeps a colour however the
    -- controller lists them: with two colours one grows from one end of the range and the other
    -- shrinks from the other end, so a user never flips while one weight only grows.
    table.sort(split.serving, function(x, y) return x.color < y.color end)
    if split.interleave then
        -- Two colours, the live one and the new one (at 0 % in an interleaving step), in name order.
        if #split.backends ~= 2 then
            return nil, "an interleaving split has two backends, got " .. #split.backends
        end
        local colors = { split.backends[1].color, split.backends[2].color }
        table.sort(colors)
        split.interleave.colors = colors
    end
    if split.shadow then
        -- The shadowed colour is in the split at 0 %: it answers no user, only the comparisons.
        local shadowed
        for _, backend in ipairs(split.backends) do
            if backend.color == split.shadow.color then
                shadowed = backend
            end
        end
        if not shadowed or shadowed.weight ~= 0 then
            return nil, "the shadowed colour " .. split.shadow.color .. " must be a backend at weight 0"
        end
        if split.interleave then
            return nil, "a split shadows or interleaves, not both"
        end
    end
    return split
end

-- The text of a split as stored and answered: one line per fact, backends in the order given.
local function format(split)
    local lines = { "generation " .. split.generation, "mode " .. split.mode }
    for _, backend in ipairs(split.backends) do
        lines[#lines + 1] = "backend " .. backend.color .. " " .. backend.address .. " " .. backend.weight
    end
    local interleave = split.interleave
    if interleave then
        lines[#lines + 1] = "interleave " .. interleave.percent .. " " .. interleave.window .. " " .. interleave.seed .. " " .. interleave.experiment
    end
    local shadow = split.shadow
    if shadow then
        lines[#lines + 1] = "shadow " .. shadow.color .. " " .. shadow.percent .. " " .. shadow.experiment
    end
    return table.concat(lines, "\n") .. "\n"
end

-- Loads the state file into the dict when the dict holds no split yet (`add` never replaces a
-- split that a POST stored meanwhile).
local function load_state_file()
    last_load_attempt = ngx.now()
    local file, err = io.open(state_file, "r")
    if not file then
        ngx.log(ngx.WARN, "orchestrate: no traffic split yet and no state file: ", err)
        return
    end
    local text = file:read("*a")
    file:close()
    local split, problem = parse(text)
    if not split then
        ngx.log(ngx.ERR, "orchestrate: the state file ", state_file, " is not a valid split: ", problem)
        return
    end
    local ok, add_err = ngx.shared[DICT]:add(KEY, format(split))
    if not ok and add_err ~= "exists" then
        ngx.log(ngx.ERR, "orchestrate: cannot store the split: ", add_err)
    end
end

-- The split in force, parsed once per worker and generation.
local function current()
    local dict = ngx.shared[DICT]
    local text = dict:get(KEY)
    if not text and ngx.now() - last_load_attempt >= 1 then
        load_state_file()
        text = dict:get(KEY)
    end
    if not text then
        return nil
    end
    if text ~= cached_text then
        local split, problem = parse(text)
        if not split then
            ngx.log(ngx.ERR, "orchestrate: the stored split is invalid: ", problem)
            return nil
        end
        cached_text, cached_split = text, split
    end
    return cached_split
end

-- The user of /recommend/USER and /events/USER (a user's events reach the colour that served
-- their recommendations), else the request id.
local function user_key()
    local uri = ngx.var.uri
    return uri:match("^/recommend/([^/]+)") or uri:match("^/events/([^/]+)") or ngx.var.request_id
end

-- The index in split.serving of the colour for this request.
local function choose(split)
    local serving = split.serving
    if #serving == 1 then
        return 1
    end
    local point
    if split.mode == "sticky" then
        point = ngx.crc32_short(user_key()) % 100
    else
        point = math.random(0, 99)
    end
    local upper = 0
    for index, backend in ipairs(serving) do
        upper = upper + backend.weight
        if point < upper then
            return index
        end
    end
    return #serving
end

-- The split in force (nil when there is none), for Resources/interleave.lua.
M.current = current

function M.configure(path, id)
    state_file = path
    config_id = id
end

function M.init_worker()
    math.randomseed(ngx.now() * 1000 + ngx.worker.pid())
    if not ngx.shared[DICT]:get(KEY) then
        load_state_file()
    end
end

-- The peers of one colour only, for the subrequests of an interleaved list (Resources/interleave.lua):
-- a colour that cannot answer is left out of the merge there, never replaced by the other colour.
-- nil when the split has no such colour.
local function colour_order(split, color)
    for _, backend in ipairs(split.backends) do
        if backend.color == color then
            local peers = backend.peers
            local start = math.random(1, #peers)
            local order = {}
            for offset = 0, math.min(#peers, 1 + MAX_MORE_TRIES) - 1 do
                order[#order + 1] = peers[(start + offset - 1) % #peers + 1]
            end
            return order
        end
    end
    return nil
end

-- The peers a request tries, in order: one of its colour's at random, the colour's others, then
-- one of the other serving colour's; at most 1 + MAX_MORE_TRIES.
local function peer_order(split, first)
    local order = {}
    local peers = split.serving[first].peers
    local start = math.random(1, #peers)
    for offset = 0, #peers - 1 do
        order[#order + 1] = peers[(start + offset - 1) % #peers + 1]
    end
    for index, backend in ipairs(split.serving) do
        if index ~= first then
            order[#order + 1] = backend.peers[math.random(1, #backend.peers)]
            break
        end
    end
    while #order > 1 + MAX_MORE_TRIES do
        table.remove(order, #order - 1)
    end
    return order
end

-- balancer_by_lua: a peer of the chosen colour first; when it cannot be reached (connection
-- refused, reset or timed out while a colour stops or its host is lost) nginx calls again and the
-- request goes to the colour's next peer, then to another serving colour. nginx calls again only
-- for proxy_next_upstream's error and timeout, never for an answer the colour gave.
function M.balance()
    local ctx = ngx.ctx
    local peer
    if not ctx.orchestrate_order then
        local split = current()
        if not split then
            ngx.log(ngx.ERR, "orchestrate: no traffic split in force")
            return ngx.exit(502)
        end
        local order
        if ctx.orchestrate_colour then
            order = colour_order(split, ctx.orchestrate_colour)
            if not order then
                ngx.log(ngx.WARN, "orchestrate: ", ctx.orchestrate_colour, " is no longer in the split")
                return ngx.exit(502)
            end
        else
            order = peer_order(split, choose(split))
        end
        ctx.orchestrate_order = order
        ctx.orchestrate_try = 1
        if #order > 1 then
            local ok, err = balancer.set_more_tries(#order - 1)
            if not ok then
                ngx.log(ngx.WARN, "orchestrate: no retry possible: ", err)
            end
        end
        peer = order[1]
    else
        local failed = ctx.orchestrate_order[ctx.orchestrate_try]
        ctx.orchestrate_try = ctx.orchestrate_try + 1
        peer = ctx.orchestrate_order[ctx.orchestrate_try]
        local state, status = balancer.get_last_failure()
        if not peer then
            return ngx.exit(502)
        end
        ngx.log(ngx.WARN, "orchestrate: ", failed.color, " at ", failed.address, " failed (", state, " ", status or "",
            "), the request goes to ", peer.color, " at ", peer.address)
    end
    local ok, err = balancer.set_current_peer(peer.host, peer.port)
    if not ok then
        ngx.log(ngx.ERR, "orchestrate: cannot use ", peer.address, ": ", err)
        return ngx.exit(502)
    end
end

local function answer(status, text)
    ngx.status = status
    ngx.header["Content-Type"] = "text/plain"
    ngx.print(text)
    return ngx.exit(status)
end

-- content_by_lua on the control socket: GET /traffic answers the configuration id and the split
-- in force; POST /traffic checks the split in the body and puts it in force when its generation
-- is newer than the one in force (the same generation with the same split is accepted again).
function M.control()
    local method = ngx.req.get_method()
    local dict = ngx.shared[DICT]
    if method == "GET" then
        current()
        return answer(200, "config " .. config_id .. "\n" .. (dict:get(KEY) or ""))
    end
    if method ~= "POST" then
        ngx.header["Allow"] = "GET, POST"
        return answer(405, "GET or POST\n")
    end
    ngx.req.read_body()
    local body = ngx.req.get_body_data()
    if not body then
        return answer(400, "no split in the body (or one larger than the body buffer)\n")
    end
    local split, problem = parse(body)
    if not split then
        return answer(400, problem .. "\n")
    end
    local text = format(split)
    local in_force = dict:get(KEY)
    local old = in_force and parse(in_force)
    if old and (split.generation < old.generation or (split.generation == old.generation and text ~= in_force)) then
        return answer(409, "generation " .. split.generation .. " is not newer than generation " .. old.generation .. " in force\n")
    end
    local ok, err = dict:set(KEY, text)
    if not ok then
        return answer(500, "cannot store the split: " .. err .. "\n")
    end
    ngx.log(ngx.NOTICE, "orchestrate: traffic split generation ", split.generation, " in force")
    return answer(200, "config " .. config_id .. "\n" .. text)
end

return M

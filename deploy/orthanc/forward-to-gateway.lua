-- Forwards the CR/DX/DR instances Orthanc stores (upload, C-STORE, STOW-RS) that the pneumonia gateway would score
-- to it, the DICOMweb server named "gateway" in orthanc.json, by STOW-RS. The gateway scores each and stores its
-- result (a DICOM SR, optionally a Secondary Capture) back into the same study; those are not radiographs, so they
-- are not forwarded again. Asynchronous: Orthanc runs the STOW-RS as a job (see /jobs when one fails).

-- Eligibility: the gateway's own rules (serving/dicomweb/population.py) on the model's intended population as
-- radiograph/contract.py's IntendedPopulation defaults state it (frontal pediatric chest films, 12-71 months).
-- A model that states another population needs these tables changed with it. What to do when the header does
-- not say is read from Orthanc's environment under the gateway's own setting names, GATEWAY_INTAKE_UNKNOWN_BODY_PART,
-- _VIEW and _AGE (refuse or accept; refuse when unset, as the gateway): give both the same values.
-- tests/dicomweb/test_dicomweb_population.py runs this function and the gateway's on the same headers.
local POPULATION = {
   modalities = { CR = true, DX = true, DR = true },
   body_parts = { CHEST = true, THORAX = true },
   anatomic_regions = { ['SCT:51185008'] = true, ['SCT:43799004'] = true, ['SCT:816094009'] = true,
                        ['SRT:T-D3000'] = true, ['SRT:T-D3200'] = true },
   view_positions = { PA = true, AP = true },
   view_codes = { ['SCT:272479007'] = true, ['SCT:399348003'] = true, ['SCT:399033003'] = true,
                  ['SRT:R-10214'] = true, ['SRT:R-10206'] = true },
   min_age_months = 12,
   max_age_months = 71,
}
local FOR_PROCESSING_SOP_CLASSES = { ['1.2.840.10008.5.1.4.1.1.1.1.1'] = true, ['1.2.840.10008.5.1.4.1.1.1.2.1'] = true,
                                     ['1.2.840.10008.5.1.4.1.1.1.3.1'] = true }
local DAYS_PER_MONTH = 365.2425 / 12
local GATEWAY = 'gateway'

local function Text(value)
   if value == nil or type(value) == 'table' then
      return ''
   end
   return (string.gsub(tostring(value), '^%s*(.-)%s*$', '%1'))
end

-- true: every statement is inside the population; false: one is not; nil: the header states nothing
local function Inside(tags, keyword, sequence, allowedTexts, allowedCodes)
   local stated, inside = false, true
   local text = string.upper(Text(tags[keyword]))
   if text ~= '' then
      stated, inside = true, allowedTexts[text] == true
   end
   for _, item in ipairs(type(tags[sequence]) == 'table' and tags[sequence] or {}) do
      local scheme = string.upper(Text(item['CodingSchemeDesignator']))
      local value = Text(item['CodeValue'])
      if value == '' then value = Text(item['LongCodeValue']) end
      if value == '' then value = Text(item['URNCodeValue']) end
      if scheme ~= '' or value ~= '' then
         stated = true
         inside = inside and allowedCodes[scheme .. ':' .. value] == true
      end
   end
   if not stated then return nil end
   return inside
end

local function ParseDate(text)
   local y, m, d = string.match(Text(text), '^(%d%d%d%d)(%d%d)(%d%d)$')
   if y == nil then return nil end
   y, m, d = tonumber(y), tonumber(m), tonumber(d)
   local time = os.time({ year = y, month = m, day = d, hour = 12 })
   local back = time and os.date('*t', time)
   if back == nil or back.year ~= y or back.month ~= m or back.day ~= d then return nil end
   return { year = y, month = m, day = d }
end

local function AgeMonths(tags)
   local count, unit = string.match(string.upper(Text(tags['PatientAge'])), '^(%d%d%d)([DWMY])$')
   if count ~= nil then
      count = tonumber(count)
      if unit == 'Y' then return count * 12 end
      if unit == 'M' then return count end
      if unit == 'W' then return math.floor(count * 7 / DAYS_PER_MONTH) end
      return math.floor(count / DAYS_PER_MONTH)
   end
   local born, seen = ParseDate(tags['PatientBirthDate']), nil
   for _, name in ipairs({ 'StudyDate', 'SeriesDate', 'AcquisitionDate', 'ContentDate' }) do
      seen = seen or ParseDate(tags[name])
   end
   if born == nil or seen == nil then return nil end
   local months = (seen.year - born.year) * 12 + seen.month - born.month
   if seen.day < born.day then months = months - 1 end
   if months < 0 then return nil end  -- born after the picture
   return months
end

local function Unknown(name)
   return string.lower(Text(os.getenv('GATEWAY_INTAKE_UNKNOWN_' .. name))) == 'accept'
end

-- Why the gateway would not score an instance with these tags (its reason's name), or nil when it would.
function WhyNotForwarded(tags)
   if not POPULATION.modalities[string.upper(Text(tags['Modality']))] then
      return 'unsupported_modality'
   end
   local frames = tonumber(Text(tags['NumberOfFrames']))
   if frames ~= nil and frames ~= 0 and frames ~= 1 then
      return 'multi_frame'
   end
   if string.upper(Text(tags['PresentationIntentType'])) == 'FOR PROCESSING'
      or FOR_PROCESSING_SOP_CLASSES[Text(tags['SOPClassUID'])] then
      return 'for_processing'
   end
   local months = AgeMonths(tags)
   local age = nil
   if months ~= nil then
      age = months >= POPULATION.min_age_months and months <= POPULATION.max_age_months
   end
   local checks = {
      { Inside(tags, 'BodyPartExamined', 'AnatomicRegionSequence', POPULATION.body_parts, POPULATION.anatomic_regions),
        'not_chest', 'body_part_unknown', 'BODY_PART' },
      { Inside(tags, 'ViewPosition', 'ViewCodeSequence', POPULATION.view_positions, POPULATION.view_codes),
        'not_frontal', 'view_unknown', 'VIEW' },
      { age, 'age_out_of_range', 'age_unknown', 'AGE' },
   }
   for _, check in ipairs(checks) do
      if check[1] == false then return check[2] end
      if check[1] == nil and not Unknown(check[4]) then return check[3] end
   end
   return nil
end

function OnStoredInstance(instanceId, tags, metadata, origin)
   local reason = WhyNotForwarded(tags)
   if reason ~= nil then
      if reason ~= 'unsupported_modality' then  -- results (SR, SC) and other modalities pass silently
         print('not forwarded to the gateway: ' .. reason)
      end
      return
   end
   Forward(instanceId, 1)
end


-- Retries. Each forward is an Orthanc job, and Orthanc retries no failed job (gateway restarting or down, 503
-- while it sheds load or its disk is full, 401 after a key rotation): the radiograph would never be scored.
-- Failed forwards wait and are sent again in rounds, a round only once none of them is still running, after a
-- pause that doubles from FORWARD_RETRY_FIRST_S to FORWARD_RETRY_MAX_S (any forward that succeeds resets it).
-- An instance is sent at most FORWARD_RETRY_ATTEMPTS times; then Orthanc's log says so and the instance gets the
-- metadata GatewayForwarding = "failed after N attempts" (docs/runbook.md, "Orthanc forwarding").
-- Orthanc 1.10 gives Lua no timer: the pause is a sleep of the Lua thread, which delays the forwarding of images
-- arriving meanwhile (never their storage). Orthanc does not save these jobs: a restart of Orthanc forgets the
-- forwards still waiting (see the runbook to send them again).
local function Setting(name, default)
   return tonumber(os.getenv(name) or '') or default
end
local RETRY = { attempts = Setting('FORWARD_RETRY_ATTEMPTS', 20), first_s = Setting('FORWARD_RETRY_FIRST_S', 5),
                max_s = Setting('FORWARD_RETRY_MAX_S', 60) }
local forwarding = {}  -- job id -> { instance = Orthanc instance id, attempt = n } for the forwards running
local waiting = {}     -- { instance, attempt } of the failed forwards, for the next round
local rounds = 0       -- retry rounds since a forward last succeeded

function Forward(instanceId, attempt)
   local request = DumpJson({ Resources = { instanceId }, Synchronous = false }, true)
   local ok, answer = pcall(RestApiPost, '/dicom-web/servers/' .. GATEWAY .. '/stow', request)
   local job = ok and ParseJson(answer or '{}')['ID'] or nil
   if job == nil then  -- not even submitted: counts as a failed attempt
      table.insert(waiting, { instance = instanceId, attempt = attempt })
   else
      forwarding[job] = { instance = instanceId, attempt = attempt }
   end
end

local function RetryRound()
   if next(forwarding) ~= nil or #waiting == 0 then
      return  -- a forward still running will end in OnJobSuccess or OnJobFailure, which come back here
   end
   rounds = rounds + 1
   local pause = math.min(RETRY.max_s, RETRY.first_s * 2 ^ (rounds - 1))
   print(string.format('gateway forwarding: %d instance(s) failed; sending them again in %g s', #waiting, pause))
   os.execute(string.format('sleep %g', pause))
   local again = waiting
   waiting = {}
   for _, item in ipairs(again) do
      Forward(item.instance, item.attempt + 1)
   end
end

function OnJobFailure(jobId)
   local item = forwarding[jobId]
   if item == nil then
      return  -- not a forward to the gateway
   end
   forwarding[jobId] = nil
   if item.attempt >= RETRY.attempts then
      print(string.format('gateway forwarding: gave up on instance %s after %d attempts', item.instance, item.attempt))
      pcall(RestApiPut, '/instances/' .. item.instance .. '/metadata/GatewayForwarding',
            string.format('failed after %d attempts', item.attempt))
   else
      table.insert(waiting, item)
   end
   RetryRound()
end

function OnJobSuccess(jobId)
   local item = forwarding[jobId]
   if item == nil then
      return
   end
   forwarding[jobId] = nil
   rounds = 0
   if item.attempt > 1 then
      print(string.format('gateway forwarding: instance %s forwarded at attempt %d', item.instance, item.attempt))
   end
   RetryRound()
end

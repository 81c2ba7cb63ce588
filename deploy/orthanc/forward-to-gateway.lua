-- Forwards every CR/DX/DR instance Orthanc stores (upload, C-STORE, STOW-RS) to the pneumonia gateway, the
-- DICOMweb server named "gateway" in orthanc.json, by STOW-RS. The gateway scores it and stores its result
-- (a DICOM SR, optionally a Secondary Capture) back into the same study; those are not radiographs, so they
-- are not forwarded again. Asynchronous: Orthanc runs the STOW-RS as a job (see /jobs when one fails).
local SCORED = { CR = true, DX = true, DR = true }
local GATEWAY = 'gateway'

function OnStoredInstance(instanceId, tags, metadata, origin)
   local series = ParseJson(RestApiGet('/instances/' .. instanceId .. '/series'))
   local modality = series['MainDicomTags']['Modality']
   if modality == nil or not SCORED[string.upper(modality)] then
      return
   end
   local request = { Resources = { instanceId }, Synchronous = false }
   RestApiPost('/dicom-web/servers/' .. GATEWAY .. '/stow', DumpJson(request, true))
end

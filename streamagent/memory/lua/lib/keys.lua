-- needs:
-- The eleven keys of one thread, by name, in the order of streamagent.memory.keys.ThreadKeys
-- (every script starts with this piece).
local CP, REFS, IDX, BLOBS, MSGS, W, WI, NS, HEAD, SEEN, TURN = KEYS[1], KEYS[2], KEYS[3],
  KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11]

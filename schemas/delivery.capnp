# Delivery Service messages and the NodeService request/response unions of the quicnproto node:
# per-recipient store-and-forward queues with ack-then-delete, fan-out, long-poll and
# first-commit-wins per (group, epoch) (RFC 9420 §14).
@0xf9f70c44e0033867;

using Auth = import "auth.capnp";

struct CommitEpoch {
  groupId @0 :Data;
  epoch @1 :UInt64;
}

struct EnqueueRequest {
  recipients @0 :List(Data);   # recipient identity keys; one transaction stores all or none
  payload @1 :Data;            # opaque to the node (an MLSMessage)
  messageId @2 :Data;          # client-chosen; a retry with the same id stores nothing new
  commit :union {
    none @3 :Void;
    handshake @4 :CommitEpoch; # the first Commit for (groupId, epoch) wins, later ones are STALE
  }
  welcome @5 :Data;            # with a handshake only: the Commit's Welcome (an MLSMessage),
                               # stored in the same transaction for the holder of each
                               # KeyPackageRef it names, only if the Commit wins (SRV-DEL-06,
                               # SRV-KP-06); empty: none
}

struct EnqueueResponse {
  seqs @0 :List(UInt64);       # one per recipient, in request order, then one per Welcome
                               # recipient
}

struct FetchRequest {
  recipientKey @0 :Data;       # must be authenticated on this connection
  afterSeq @1 :UInt64;         # return messages with seq > afterSeq
  limit @2 :UInt32;            # at most this many (the node caps it)
  waitMs @3 :UInt32;           # long-poll: wait up to this long when nothing is queued
  ackUpToSeq @4 :UInt64;       # delete every message with seq <= this (0: none) and never
                               # return them, so a polling loop acknowledges the previous
                               # batch without an ack request (durable in the node's next
                               # group commit; the answer does not wait for it)
}

struct QueuedMessage {
  seq @0 :UInt64;
  messageId @1 :Data;
  payload @2 :Data;
}

struct FetchResponse {
  messages @0 :List(QueuedMessage);
  expiredCount @1 :UInt32;     # messages after afterSeq, up to where this answer reaches, that
                               # expired (or were lost to a corrupt store) and will never come:
                               # the gap is visible, not silent (0 from nodes before this field)
  expiredUpToSeq @2 :UInt64;   # the highest such seq (0: none); a client may move its cursor
                               # to max(last message seq, expiredUpToSeq)
}

struct AckRequest {
  recipientKey @0 :Data;       # must be authenticated on this connection
  upToSeq @1 :UInt64;          # delete every message with seq <= upToSeq
}

struct AckResponse {
  removed @0 :UInt32;
}

struct CountQueueRequest {
  recipientKey @0 :Data;
}

struct CountQueueResponse {
  count @0 :UInt32;
}

struct StatsRequest {
  identityKey @0 :Data;        # must be authenticated on this connection
}

struct StatsResponse {
  messages @0 :UInt32;         # messages queued for this identity
  bytes @1 :UInt64;            # their payload bytes
  keyPackages @2 :UInt32;      # unexpired single-use KeyPackages left (last resort not counted)
}

struct PingResponse {
  version @0 :Text;
  timeMs @1 :UInt64;
}

# NodeService: NodeRequest and NodeResponse are its one request/response union. A request of
# kind k is answered by the response of the same kind k, or by Envelope.error.
struct NodeRequest {
  union {
    ping @0 :Void;
    getChallenge @1 :Void;
    authenticate @2 :Auth.AuthenticateRequest;
    uploadKeyPackage @3 :Auth.UploadKeyPackageRequest;
    fetchKeyPackage @4 :Auth.FetchKeyPackageRequest;
    countKeyPackages @5 :Auth.CountKeyPackagesRequest;
    enqueue @6 :EnqueueRequest;
    fetch @7 :FetchRequest;
    ack @8 :AckRequest;
    countQueue @9 :CountQueueRequest;
    stats @10 :StatsRequest;
  }
}

struct NodeResponse {
  union {
    ping @0 :PingResponse;
    challenge @1 :Auth.ChallengeResponse;
    authenticate @2 :Auth.AuthenticateResponse;
    uploadKeyPackage @3 :Auth.UploadKeyPackageResponse;
    fetchKeyPackage @4 :Auth.FetchKeyPackageResponse;
    countKeyPackages @5 :Auth.CountKeyPackagesResponse;
    enqueue @6 :EnqueueResponse;
    fetch @7 :FetchResponse;
    ack @8 :AckResponse;
    countQueue @9 :CountQueueResponse;
    stats @10 :StatsResponse;
  }
}

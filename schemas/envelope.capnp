# The one message type carried in every length-prefixed frame on a quicnproto QUIC stream:
# a request id plus a request, a response, or an error. One request and one answer per stream.
@0xae293cd6298d7708;

using Delivery = import "delivery.capnp";

struct Error {
  code @0 :UInt16;   # quicnproto.errors.ErrorCode
  detail @1 :Text;   # short and secret-free
}

struct Envelope {
  requestId @0 :UInt64;   # client-chosen, echoed in the answer, used in logs
  union {
    request @1 :Delivery.NodeRequest;
    response @2 :Delivery.NodeResponse;
    error @3 :Error;
  }
}

//! A hub frame is a [`SharedFrame`]: its wire encodings are made by the
//! first connection's writer that needs each, then reused by the rest.

use bytes::Bytes;
use fastwebsockets::OpCode;
use sluice_protocol::wire::SharedFrame;

use crate::hub::{Encoding, Frame, Kind};

impl SharedFrame for Frame {
    fn opcode(&self) -> OpCode {
        match self.kind {
            Kind::Text => OpCode::Text,
            Kind::Binary => OpCode::Binary,
        }
    }

    fn payload(&self) -> &[u8] {
        &self.payload
    }

    fn encoded<E>(
        &self,
        deflated: bool,
        encode: impl FnOnce(&[u8]) -> Result<Bytes, E>,
    ) -> Result<&Bytes, E> {
        let encoding = if deflated {
            Encoding::Deflated
        } else {
            Encoding::Plain
        };
        Frame::encoded(self, encoding, |frame| encode(&frame.payload))
    }
}

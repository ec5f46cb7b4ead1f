//! Envoy's connection buffers and the connection's streams, over the raw hostcalls.
//!
//! The Rust SDK panics on a status it does not expect (`hostcalls::get_buffer`,
//! `set_buffer`, `resume_downstream`, `close_downstream` and the `StreamContext`
//! wrappers), and a panic aborts the VM and,
//! fail-closed, resets every later connection. Here every status is an `Err` the caller
//! handles. What Envoy allows (docs/envoy-host.md): read any range; prepend at 0, drain
//! a prefix, append, or replace the whole buffer; a middle range is `BadArgument`.
#![allow(unsafe_code)]

use proxy_wasm::types::{BufferType, StreamType};

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_set_buffer_bytes(
        buffer_type: u32,
        start: usize,
        size: usize,
        buffer_data: *const u8,
        buffer_size: usize,
    ) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_close_stream(stream_type: u32) -> u32;
}

/// proxy-wasm ABI status codes.
const OK: u32 = 0;
const NOT_FOUND: u32 = 1;

/// A status other than Ok, as the host returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(pub u32);

/// Up to `max` bytes of `buffer` from `start` (none past its end).
pub fn read(buffer: BufferType, start: usize, max: usize) -> Result<Option<Vec<u8>>, Status> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer it allocated through this module's
    // `proxy_on_memory_allocate` (the SDK's, a `Vec<u8>` of capacity `size`) and its size;
    // ownership passes to us, as in the SDK's own `get_buffer`.
    let status = unsafe { proxy_get_buffer_bytes(buffer as u32, start, max, &mut data, &mut size) };
    match status {
        OK if data.is_null() => Ok(None),
        OK => Ok(Some(unsafe { Vec::from_raw_parts(data, size, size) })),
        NOT_FOUND => Ok(None),
        other => Err(Status(other)),
    }
}

fn set(buffer: BufferType, start: usize, size: usize, value: &[u8]) -> Result<(), Status> {
    // SAFETY: the host only reads `value.len()` bytes from `value`, during the call.
    let status =
        unsafe { proxy_set_buffer_bytes(buffer as u32, start, size, value.as_ptr(), value.len()) };
    match status {
        OK => Ok(()),
        other => Err(Status(other)),
    }
}

/// Insert `bytes` before the buffer's first byte.
pub fn prepend(buffer: BufferType, bytes: &[u8]) -> Result<(), Status> {
    set(buffer, 0, 0, bytes)
}

/// Remove the buffer's first `n` bytes.
pub fn drain(buffer: BufferType, n: usize) -> Result<(), Status> {
    set(buffer, 0, n, &[])
}

/// Let the downstream bytes held in Envoy's buffer (a data callback returned Pause) flow
/// to the filters after ours; Envoy does it when the current callback returns.
pub fn continue_downstream() -> Result<(), Status> {
    // SAFETY: no pointers cross.
    match unsafe { proxy_continue_stream(StreamType::Downstream as u32) } {
        OK => Ok(()),
        other => Err(Status(other)),
    }
}

/// Close the connection from the app's side (Envoy flushes what was written first).
pub fn close_downstream() -> Result<(), Status> {
    // SAFETY: no pointers cross.
    match unsafe { proxy_close_stream(StreamType::Downstream as u32) } {
        OK => Ok(()),
        other => Err(Status(other)),
    }
}

using System.Runtime.InteropServices;

namespace VmmSharp.Devices.Virtio.Vsock;

/// <summary>
/// <c>struct virtio_vsock_hdr</c> (virtio 1.2 §5.10.6): the 44 bytes, little-endian and packed, in front of every
/// packet on the receive and transmit queues.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VsockHeader
{
    /// <summary>The header's size in bytes.</summary>
    public const int Size = 44;

    /// <summary>The sender's context id.</summary>
    public ulong SrcCid;

    /// <summary>The receiver's context id.</summary>
    public ulong DstCid;

    /// <summary>The sender's port.</summary>
    public uint SrcPort;

    /// <summary>The receiver's port.</summary>
    public uint DstPort;

    /// <summary>The payload's length in bytes (RW only; 0 otherwise).</summary>
    public uint Len;

    /// <summary>The socket type: <see cref="VsockOp.TypeStream"/>.</summary>
    public ushort Type;

    /// <summary>The operation, one of <see cref="VsockOp"/>'s.</summary>
    public ushort Op;

    /// <summary>SHUTDOWN's flags (<see cref="VsockOp.ShutdownReceive"/>, <see cref="VsockOp.ShutdownSend"/>).</summary>
    public uint Flags;

    /// <summary>The sender's receive buffer size for this connection.</summary>
    public uint BufAlloc;

    /// <summary>How many bytes the sender has taken out of that buffer since the connection began.</summary>
    public uint FwdCnt;
}

/// <summary>The values of <see cref="VsockHeader"/>'s type, op and flags fields.</summary>
public static class VsockOp
{
    /// <summary>VIRTIO_VSOCK_TYPE_STREAM, the only type this device carries.</summary>
    public const ushort TypeStream = 1;

    /// <summary>VIRTIO_VSOCK_OP_REQUEST: open a connection.</summary>
    public const ushort Request = 1;

    /// <summary>VIRTIO_VSOCK_OP_RESPONSE: the connection is open.</summary>
    public const ushort Response = 2;

    /// <summary>VIRTIO_VSOCK_OP_RST: the connection is gone (or never was).</summary>
    public const ushort Rst = 3;

    /// <summary>VIRTIO_VSOCK_OP_SHUTDOWN: the sender stops sending and/or receiving.</summary>
    public const ushort Shutdown = 4;

    /// <summary>VIRTIO_VSOCK_OP_RW: payload.</summary>
    public const ushort Rw = 5;

    /// <summary>VIRTIO_VSOCK_OP_CREDIT_UPDATE: the sender's buf_alloc and fwd_cnt.</summary>
    public const ushort CreditUpdate = 6;

    /// <summary>VIRTIO_VSOCK_OP_CREDIT_REQUEST: asks for a CREDIT_UPDATE.</summary>
    public const ushort CreditRequest = 7;

    /// <summary>VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE: the sender will receive no more.</summary>
    public const uint ShutdownReceive = 1;

    /// <summary>VIRTIO_VSOCK_SHUTDOWN_F_SEND: the sender will send no more.</summary>
    public const uint ShutdownSend = 2;
}

namespace VmmSharp.Devices.Virtio.Net;

/// <summary>The fields of <c>virtio_net_hdr_v1</c> (virtio 1.2 §5.1.6) the device looks at or writes.</summary>
internal static class VirtioNetHeader
{
    /// <summary>Byte 0, flags: VIRTIO_NET_HDR_F_NEEDS_CSUM (the checksum at csum_start + csum_offset is partial).</summary>
    public const byte FlagNeedsCsum = 1;

    /// <summary>Byte 1, gso_type: VIRTIO_NET_HDR_GSO_NONE, _TCPV4, _TCPV6.</summary>
    public const byte GsoNone = 0, GsoTcpV4 = 1, GsoTcpV6 = 4;

    /// <summary>Byte offset of num_buffers (le16): how many receive chains the frame filled.</summary>
    public const int NumBuffersOffset = 10;
}

namespace VmmSharp.Devices.Virtio.Net;

/// <summary>The virtio-net feature bits (virtio 1.2 §5.1.3) that <see cref="VirtioNet"/> offers.</summary>
public static class VirtioNetFeatures
{
    /// <summary>VIRTIO_NET_F_CSUM: the driver may send frames with a partial checksum (NEEDS_CSUM) for the host to finish.</summary>
    public const ulong Csum = 1UL << 0;

    /// <summary>VIRTIO_NET_F_GUEST_CSUM: the driver takes frames with a partial checksum (the TAP's TUN_F_CSUM).</summary>
    public const ulong GuestCsum = 1UL << 1;

    /// <summary>VIRTIO_NET_F_MAC: the configuration space holds the MAC address.</summary>
    public const ulong Mac = 1UL << 5;

    /// <summary>VIRTIO_NET_F_GUEST_TSO4: the driver takes TCPv4 segmentation-offload frames (TUN_F_TSO4).</summary>
    public const ulong GuestTso4 = 1UL << 7;

    /// <summary>VIRTIO_NET_F_GUEST_TSO6: the driver takes TCPv6 segmentation-offload frames (TUN_F_TSO6).</summary>
    public const ulong GuestTso6 = 1UL << 8;

    /// <summary>VIRTIO_NET_F_HOST_TSO4: the driver may send TCPv4 frames for the host to segment.</summary>
    public const ulong HostTso4 = 1UL << 11;

    /// <summary>VIRTIO_NET_F_HOST_TSO6: the driver may send TCPv6 frames for the host to segment.</summary>
    public const ulong HostTso6 = 1UL << 12;

    /// <summary>VIRTIO_NET_F_MRG_RXBUF: a received frame may fill several receive chains (<c>num_buffers</c> says how many).</summary>
    public const ulong MrgRxBuf = 1UL << 15;

    /// <summary>VIRTIO_NET_F_STATUS: the configuration space holds the link status (always up here).</summary>
    public const ulong Status = 1UL << 16;

    /// <summary>Everything the device offers.</summary>
    public const ulong Offered = Csum | GuestCsum | Mac | GuestTso4 | GuestTso6 | HostTso4 | HostTso6 | MrgRxBuf | Status;

    /// <summary>TUNSETOFFLOAD's flags (linux/if_tun.h): what the TAP may hand us, and so the guest.</summary>
    internal const uint TunCsum = 0x01, TunTso4 = 0x02, TunTso6 = 0x04;

    /// <summary>
    /// The TAP offloads that match what the driver accepted for receiving: TSO needs the checksum offload too (the TAP
    /// ignores TSO without TUN_F_CSUM, and the spec makes GUEST_TSO depend on GUEST_CSUM).
    /// </summary>
    internal static uint TapOffloads(ulong driverFeatures)
    {
        if ((driverFeatures & GuestCsum) == 0)
        {
            return 0;
        }
        uint flags = TunCsum;
        if ((driverFeatures & GuestTso4) != 0)
        {
            flags |= TunTso4;
        }
        if ((driverFeatures & GuestTso6) != 0)
        {
            flags |= TunTso6;
        }
        return flags;
    }
}

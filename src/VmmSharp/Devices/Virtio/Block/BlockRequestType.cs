namespace VmmSharp.Devices.Virtio.Block;

/// <summary>virtio-blk request types and status values (virtio 1.2 §5.2.6).</summary>
internal static class BlockRequestType
{
    public const uint In = 0, Out = 1, Flush = 4, GetId = 8, Discard = 11, WriteZeroes = 13;

    public const byte StatusOk = 0, StatusIoError = 1, StatusUnsupported = 2;

    /// <summary>The request header: type, reserved, sector.</summary>
    public const int HeaderSize = 16;

    /// <summary>One discard / write-zeroes segment: sector, num_sectors, flags.</summary>
    public const int RangeSize = 16;

    public const uint RangeFlagUnmap = 1;

    /// <summary>GET_ID's answer: up to 20 bytes, NUL-padded.</summary>
    public const int IdSize = 20;
}

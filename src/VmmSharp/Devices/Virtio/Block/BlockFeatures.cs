namespace VmmSharp.Devices.Virtio.Block;

/// <summary>virtio-blk feature bits (virtio 1.2 §5.2.3).</summary>
public static class BlockFeatures
{
    /// <summary>VIRTIO_BLK_F_SIZE_MAX: size_max bounds one buffer.</summary>
    public const ulong SizeMax = 1UL << 1;

    /// <summary>VIRTIO_BLK_F_SEG_MAX: seg_max bounds the buffers of a request.</summary>
    public const ulong SegMax = 1UL << 2;

    /// <summary>VIRTIO_BLK_F_RO: the disk is read-only.</summary>
    public const ulong ReadOnly = 1UL << 5;

    /// <summary>VIRTIO_BLK_F_BLK_SIZE: blk_size is the optimal block size.</summary>
    public const ulong BlockSize = 1UL << 6;

    /// <summary>VIRTIO_BLK_F_FLUSH: the FLUSH command exists.</summary>
    public const ulong Flush = 1UL << 9;

    /// <summary>VIRTIO_BLK_F_DISCARD.</summary>
    public const ulong Discard = 1UL << 13;

    /// <summary>VIRTIO_BLK_F_WRITE_ZEROES.</summary>
    public const ulong WriteZeroes = 1UL << 14;
}

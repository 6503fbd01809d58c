namespace VmmSharp.Devices.Virtio.Queues;

/// <summary>What <see cref="Virtqueue.TryPop"/> found.</summary>
public enum QueuePop
{
    /// <summary>No buffers are available.</summary>
    Empty,

    /// <summary>A well-formed chain was taken; it is in the <see cref="DescriptorChain"/> passed in.</summary>
    Chain,

    /// <summary>The guest broke the ring's rules; <see cref="Virtqueue.Error"/> says how. The queue stays broken until reset.</summary>
    Error,
}

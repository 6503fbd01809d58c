using System.Buffers.Binary;
using VmmSharp.Devices.Virtio.Queues;
using VmmSharp.Memory;
using VmmSharp.State;

namespace VmmSharp.Tests.Devices.Virtio;

/// <summary>A split virtqueue saved mid-stream and restored into a fresh queue, and hostile saved states.</summary>
public sealed class VirtqueueStateTests : IDisposable
{
    // Field offsets in a queue's section, after the 6-byte header.
    private const int SizeAt = 2, DescAt = 5, ActiveAt = 29, NextAvailAt = 32;

    private readonly GuestMemory _memory = TestRing.MemoryWithHole();
    private readonly DescriptorChain _chain = new(16);

    public void Dispose() => _memory.Dispose();

    [Fact]
    public void A_queue_restored_mid_stream_takes_the_next_avail_entry_and_fills_the_next_used_one()
    {
        var ring = new TestRing(_memory);
        for (int i = 0; i < 3; i++)
        {
            ring.SetDescriptor(i, TestRing.Data + ((ulong)i * 0x100), 64);
            ring.Offer((ushort)i);
        }
        Assert.Equal(QueuePop.Chain, ring.Queue.TryPop(_chain));
        Assert.True(ring.Queue.TryPushUsed(_chain.Head, 1));
        byte[] state = StateRoundTrip.Save(ring.Queue);

        var restored = new Virtqueue(16);
        StateRoundTrip.Restore(restored, state, "queue 0");
        Assert.False(restored.IsActive);
        restored.BindRestored(_memory, "queue 0");

        Assert.True(restored.IsActive);
        Assert.Equal(QueuePop.Chain, restored.TryPop(_chain));
        Assert.Equal(1, _chain.Head);
        Assert.True(restored.TryPushUsed(_chain.Head, 2));
        Assert.Equal(2, ring.UsedIdx);
        Assert.Equal((1u, 2u), ring.UsedElement(1));
        Assert.Equal(QueuePop.Chain, restored.TryPop(_chain));
        Assert.Equal(2, _chain.Head);
    }

    [Fact]
    public void An_inactive_queue_keeps_the_registers_the_driver_wrote()
    {
        var queue = new Virtqueue(16) { Size = 1000, DescriptorTable = 0x1234, Ready = false };
        var restored = new Virtqueue(16);
        StateRoundTrip.Copy(queue, restored);
        restored.BindRestored(_memory, "q");
        Assert.False(restored.IsActive);
        Assert.Equal(1000, restored.Size);
        Assert.Equal(0x1234UL, restored.DescriptorTable);
    }

    [Fact]
    public void A_size_that_is_not_a_power_of_two_is_refused()
    {
        byte[] state = ActiveState();
        BinaryPrimitives.WriteUInt16LittleEndian(state.AsSpan(6 + SizeAt), 12);
        Assert.Contains("size 12", StateRoundTrip.Refused(new Virtqueue(16), state), StringComparison.Ordinal);
    }

    [Fact]
    public void A_size_above_the_maximum_is_refused()
    {
        byte[] state = ActiveState();
        BinaryPrimitives.WriteUInt16LittleEndian(state.AsSpan(6 + SizeAt), 32);
        Assert.Contains("size 32", StateRoundTrip.Refused(new Virtqueue(16), state), StringComparison.Ordinal);
    }

    [Fact]
    public void A_ring_outside_guest_memory_is_refused_when_bound()
    {
        byte[] state = ActiveState();
        BinaryPrimitives.WriteUInt64LittleEndian(state.AsSpan(6 + DescAt), 0x18_0000); // in the hole
        var queue = new Virtqueue(16);
        StateRoundTrip.Restore(queue, state);
        var error = Assert.Throws<StateFormatException>(() => queue.BindRestored(_memory, "virtio 0/queue 0"));
        Assert.Contains("virtio 0/queue 0: descriptor table at 0x180000", error.Message, StringComparison.Ordinal);
        Assert.False(queue.IsActive);
        Assert.False(queue.AwaitsMemory);
    }

    [Fact]
    public void A_next_avail_further_ahead_than_the_queue_size_is_refused()
    {
        byte[] state = ActiveState();
        BinaryPrimitives.WriteUInt16LittleEndian(state.AsSpan(6 + NextAvailAt), 17);
        Assert.Contains("next avail 17", StateRoundTrip.Refused(new Virtqueue(16), state), StringComparison.Ordinal);
    }

    [Fact]
    public void An_inactive_queue_with_ring_indices_is_refused()
    {
        byte[] state = ActiveState();
        BinaryPrimitives.WriteUInt16LittleEndian(state.AsSpan(6 + NextAvailAt), 1);
        state[6 + ActiveAt] = 0;
        Assert.Contains("inactive queue", StateRoundTrip.Refused(new Virtqueue(16), state), StringComparison.Ordinal);
    }

    [Fact]
    public void A_queue_of_another_maximum_size_is_refused()
        => Assert.Contains("max size 16", StateRoundTrip.Refused(new Virtqueue(64), ActiveState()), StringComparison.Ordinal);

    [Fact]
    public void A_truncated_state_is_refused()
        => Assert.Contains("error present", StateRoundTrip.Refused(new Virtqueue(16), StateRoundTrip.Truncated(ActiveState(), 1)), StringComparison.Ordinal);

    private byte[] ActiveState() => StateRoundTrip.Save(new TestRing(_memory).Queue);
}

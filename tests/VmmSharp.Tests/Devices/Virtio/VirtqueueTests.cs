using VmmSharp.Devices.Virtio;
using VmmSharp.Devices.Virtio.Queues;
using VmmSharp.Memory;
using D = VmmSharp.Devices.Virtio.Queues.VirtqDescriptor;

namespace VmmSharp.Tests.Devices.Virtio;

/// <summary>The split virtqueue over real guest memory, with rings built by hand, well-formed and hostile.</summary>
public sealed class VirtqueueTests : IDisposable
{
    private readonly GuestMemory _memory = TestRing.MemoryWithHole();
    private readonly DescriptorChain _chain = new(16);

    public void Dispose() => _memory.Dispose();

    [Fact]
    public void An_empty_ring_pops_nothing()
    {
        var ring = new TestRing(_memory);
        Assert.Equal(QueuePop.Empty, ring.Queue.TryPop(_chain));
    }

    [Fact]
    public void A_direct_chain_pops_with_its_readable_then_writable_buffers()
    {
        var ring = new TestRing(_memory);
        ring.SetDescriptor(3, TestRing.Data, 16, D.FlagNext, 5);
        ring.SetDescriptor(5, TestRing.Data + 0x100, 512, D.FlagNext | D.FlagWrite, 7);
        ring.SetDescriptor(7, TestRing.Data + 0x400, 1, D.FlagWrite);
        ring.Offer(3);

        Assert.Equal(QueuePop.Chain, ring.Queue.TryPop(_chain));
        Assert.Equal(3, _chain.Head);
        Assert.Equal(3, _chain.Count);
        Assert.Equal(1, _chain.ReadableCount);
        Assert.Equal(16UL, _chain.ReadableLength);
        Assert.Equal(513UL, _chain.WritableLength);
        Assert.Equal(new ChainSegment(TestRing.Data + 0x100, 512, true), _chain.Segments[1]);
        Assert.Equal(QueuePop.Empty, ring.Queue.TryPop(_chain));
    }

    [Fact]
    public void An_indirect_chain_pops_its_tables_buffers()
    {
        var ring = new TestRing(_memory);
        const ulong table = 0x8000;
        ring.WriteDescriptor(table, 0, TestRing.Data, 16, D.FlagNext, 2);
        ring.WriteDescriptor(table, 2, TestRing.Data + 0x200, 100, D.FlagWrite);
        ring.SetDescriptor(0, table, 4 * 16, D.FlagIndirect);
        ring.Offer(0);

        Assert.Equal(QueuePop.Chain, ring.Queue.TryPop(_chain));
        Assert.Equal(2, _chain.Count);
        Assert.Equal(new ChainSegment(TestRing.Data + 0x200, 100, true), _chain.Segments[1]);
    }

    [Fact]
    public void Pushing_used_writes_the_element_then_the_index()
    {
        var ring = new TestRing(_memory);
        ring.SetDescriptor(9, TestRing.Data, 8, D.FlagWrite);
        ring.Offer(9);
        Assert.Equal(QueuePop.Chain, ring.Queue.TryPop(_chain));

        Assert.True(ring.Queue.TryPushUsed(_chain.Head, 8));
        Assert.Equal(1, ring.UsedIdx);
        Assert.Equal((9u, 8u), ring.UsedElement(0));
    }

    [Fact]
    public void A_head_index_out_of_range_is_an_error()
        => AssertRejected(ring => ring.Offer(16), "out of range");

    [Fact]
    public void A_next_index_out_of_range_is_an_error()
        => AssertRejected(ring =>
        {
            ring.SetDescriptor(0, TestRing.Data, 8, D.FlagNext, 40);
            ring.Offer(0);
        }, "out of range");

    [Fact]
    public void A_loop_is_an_error()
        => AssertRejected(ring =>
        {
            ring.SetDescriptor(0, TestRing.Data, 8, D.FlagNext, 1);
            ring.SetDescriptor(1, TestRing.Data, 8, D.FlagNext, 0);
            ring.Offer(0);
        }, "longer than the queue size");

    [Fact]
    public void A_loop_inside_an_indirect_table_is_an_error()
        => AssertRejected(ring =>
        {
            ring.WriteDescriptor(0x8000, 0, TestRing.Data, 8, D.FlagNext, 1);
            ring.WriteDescriptor(0x8000, 1, TestRing.Data, 8, D.FlagNext, 0);
            ring.SetDescriptor(0, 0x8000, 2 * 16, D.FlagIndirect);
            ring.Offer(0);
        }, "longer than its table");

    [Fact]
    public void An_indirect_table_inside_an_indirect_table_is_an_error()
        => AssertRejected(ring =>
        {
            ring.WriteDescriptor(0x9000, 0, TestRing.Data, 8);
            ring.WriteDescriptor(0x8000, 0, 0x9000, 16, D.FlagIndirect);
            ring.SetDescriptor(0, 0x8000, 16, D.FlagIndirect);
            ring.Offer(0);
        }, "inside an indirect table");

    [Fact]
    public void An_indirect_descriptor_without_the_feature_is_an_error()
    {
        var ring = new TestRing(_memory, features: VirtioFeatures.Version1);
        ring.WriteDescriptor(0x8000, 0, TestRing.Data, 8);
        ring.SetDescriptor(0, 0x8000, 16, D.FlagIndirect);
        ring.Offer(0);
        AssertError(ring, "not negotiated");
    }

    [Theory]
    [InlineData(0u, "not a whole number")]
    [InlineData(24u, "not a whole number")]
    [InlineData(17u * 16, "longer than")]
    public void An_indirect_table_of_a_bad_size_is_an_error(uint length, string reason)
        => AssertRejected(ring =>
        {
            ring.SetDescriptor(0, 0x8000, length, D.FlagIndirect);
            ring.Offer(0);
        }, reason);

    [Fact]
    public void An_indirect_table_outside_guest_memory_is_an_error()
        => AssertRejected(ring =>
        {
            ring.SetDescriptor(0, (1 << 20) - 16, 32, D.FlagIndirect);
            ring.Offer(0);
        }, "outside guest memory");

    [Theory]
    [InlineData(0x100000UL, 16u)]              // in the hole
    [InlineData(0xFFFF0UL, 32u)]               // runs from RAM into the hole
    [InlineData(0x2FFFF0UL, 32u)]              // runs past the end of RAM
    [InlineData(ulong.MaxValue - 7, 16u)]      // wraps around the address space
    public void A_buffer_outside_guest_memory_is_an_error(ulong address, uint length)
        => AssertRejected(ring =>
        {
            ring.SetDescriptor(0, TestRing.Data, 8, D.FlagNext, 1);
            ring.SetDescriptor(1, address, length, D.FlagWrite);
            ring.Offer(0);
        }, "outside guest memory");

    [Fact]
    public void Buffers_adding_up_past_4_GiB_are_an_error()
    {
        // 64 MiB of lazily mapped RAM and an indirect table of 65 buffers each covering all of it.
        using var memory = GuestMemory.WithRam(64 << 20);
        var chain = new DescriptorChain(256);
        var ring = new TestRing(memory, 256);
        for (int i = 0; i < 65; i++)
        {
            ring.WriteDescriptor(0x8000, i, 0, 64 << 20, (ushort)(D.FlagWrite | (i < 64 ? D.FlagNext : 0)), (ushort)(i + 1));
        }
        ring.SetDescriptor(0, 0x8000, 65 * 16, D.FlagIndirect);
        ring.Offer(0);

        Assert.Equal(QueuePop.Error, ring.Queue.TryPop(chain));
        Assert.Contains("more than 4 GiB", ring.Queue.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_readable_buffer_after_a_writable_one_is_an_error()
        => AssertRejected(ring =>
        {
            ring.SetDescriptor(0, TestRing.Data, 8, D.FlagWrite | D.FlagNext, 1);
            ring.SetDescriptor(1, TestRing.Data + 8, 8);
            ring.Offer(0);
        }, "follows a device-writable");

    [Fact]
    public void An_available_index_more_than_the_queue_size_ahead_is_an_error()
        => AssertRejected(ring => ring.SetAvailIndex(17), "more than the queue size");

    [Fact]
    public void A_broken_queue_stays_broken_until_reset()
    {
        var ring = new TestRing(_memory);
        ring.Offer(99);
        Assert.Equal(QueuePop.Error, ring.Queue.TryPop(_chain));
        ring.SetDescriptor(0, TestRing.Data, 8);
        ring.Offer(0);
        Assert.Equal(QueuePop.Error, ring.Queue.TryPop(_chain));

        ring.Queue.Reset();
        Assert.False(ring.Queue.IsActive);
        Assert.Null(ring.Queue.Error);
    }

    [Theory]
    [InlineData(0x100000UL, TestRing.Avail, TestRing.Used, "descriptor table")]
    [InlineData(TestRing.Desc, 0xFFFF8UL, TestRing.Used, "available ring")]
    [InlineData(TestRing.Desc, TestRing.Avail, 0xFFFC0UL, "used ring")]
    [InlineData(TestRing.Desc + 8, TestRing.Avail, TestRing.Used, "misaligned")]
    public void Activation_rejects_rings_outside_memory_or_misaligned(ulong desc, ulong avail, ulong used, string reason)
    {
        var q = new Virtqueue(16) { DescriptorTable = desc, DriverArea = avail, DeviceArea = used, Ready = true };
        Assert.False(q.TryActivate(_memory, VirtioFeatures.Common, out string? error));
        Assert.Contains(reason, error, StringComparison.Ordinal);
        Assert.False(q.IsActive);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(12)]
    [InlineData(32)]
    public void Activation_rejects_a_size_that_is_not_a_power_of_two_up_to_the_maximum(ushort size)
    {
        var q = new Virtqueue(16);
        TestRing.Configure(q);
        q.Size = size;
        Assert.False(q.TryActivate(_memory, VirtioFeatures.Common, out string? error));
        Assert.Contains("power of two", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_event_idx_the_no_interrupt_flag_suppresses_interrupts()
    {
        var ring = new TestRing(_memory, features: VirtioFeatures.Version1);
        PopAndPush(ring, 0);
        Assert.True(ring.Queue.NeedsInterrupt());
        Assert.False(ring.Queue.NeedsInterrupt()); // nothing new since

        _memory.Write(TestRing.Avail, (ushort)1);  // VIRTQ_AVAIL_F_NO_INTERRUPT
        PopAndPush(ring, 1);
        Assert.False(ring.Queue.NeedsInterrupt());
    }

    [Fact]
    public void With_event_idx_used_event_decides_the_interrupt()
    {
        var ring = new TestRing(_memory);
        ulong usedEvent = TestRing.Avail + 4 + (2 * 16);
        _memory.Write(usedEvent, (ushort)1);       // interrupt once used idx passes 1
        PopAndPush(ring, 0);
        Assert.False(ring.Queue.NeedsInterrupt()); // used idx 1: not past 1 yet
        PopAndPush(ring, 1);
        Assert.True(ring.Queue.NeedsInterrupt());  // used idx 2
    }

    [Fact]
    public void Arming_a_notification_writes_avail_event_and_sees_late_buffers()
    {
        var ring = new TestRing(_memory);
        PopAndPush(ring, 0);
        Assert.Equal(QueuePop.Empty, ring.Queue.TryPop(_chain));
        Assert.False(ring.Queue.ArmNotification());
        Assert.Equal(1, _memory.Read<ushort>(TestRing.Used + 4 + (8 * 16)));

        ring.SetDescriptor(1, TestRing.Data, 8, D.FlagWrite);
        ring.Offer(1);
        Assert.True(ring.Queue.ArmNotification());
    }

    private void PopAndPush(TestRing ring, int index)
    {
        ring.SetDescriptor(index, TestRing.Data, 8, D.FlagWrite);
        ring.Offer((ushort)index);
        Assert.Equal(QueuePop.Chain, ring.Queue.TryPop(_chain));
        Assert.True(ring.Queue.TryPushUsed(_chain.Head, 0));
    }

    private void AssertRejected(Action<TestRing> build, string reason)
    {
        var ring = new TestRing(_memory);
        build(ring);
        AssertError(ring, reason);
    }

    private void AssertError(TestRing ring, string reason)
    {
        byte[] before = ring.Snapshot();
        Assert.Equal(QueuePop.Error, ring.Queue.TryPop(_chain));
        Assert.Contains(reason, ring.Queue.Error, StringComparison.Ordinal);
        Assert.Equal(0, ring.Queue.NextAvail);
        // The device wrote nothing: every byte of guest RAM is as the driver left it.
        Assert.Equal(before, ring.Snapshot());
    }
}

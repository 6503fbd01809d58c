using VmmSharp.Buses;
using Xunit;

namespace VmmSharp.Tests.Buses;

public class IoBusTests
{
    private sealed class RecordingDevice : IPioDevice
    {
        public List<(ushort Offset, byte[] Data)> Writes { get; } = [];

        public ushort LastReadOffset { get; private set; } = 0xffff;

        public byte ReadValue { get; set; } = 0x42;

        public void Read(ushort offset, Span<byte> data)
        {
            LastReadOffset = offset;
            data.Fill(ReadValue);
        }

        public void Write(ushort offset, ReadOnlySpan<byte> data) => Writes.Add((offset, data.ToArray()));
    }

    [Fact]
    public void Read_dispatches_to_the_device_with_the_offset_from_its_base()
    {
        var bus = new IoBus();
        var device = new RecordingDevice();
        bus.Register(0x3f8, 8, device);

        Span<byte> data = stackalloc byte[1];
        Assert.True(bus.Read(0x3fd, data));

        Assert.Equal(5, device.LastReadOffset);
        Assert.Equal(0x42, data[0]);
    }

    [Fact]
    public void Write_dispatches_the_bytes_to_the_device()
    {
        var bus = new IoBus();
        var device = new RecordingDevice();
        bus.Register(0x510, 2, device);

        Assert.True(bus.Write(0x510, [0x19, 0x00]));

        (ushort offset, byte[] written) = Assert.Single(device.Writes);
        Assert.Equal(0, offset);
        Assert.Equal(new byte[] { 0x19, 0x00 }, written);
    }

    [Fact]
    public void Read_of_an_unhandled_port_returns_all_ones_and_false()
    {
        var bus = new IoBus();
        bus.Register(0x60, 1, new RecordingDevice());

        byte[] data = [0, 0, 0, 0];
        Assert.False(bus.Read(0x61, data));

        Assert.Equal(new byte[] { 0xff, 0xff, 0xff, 0xff }, data);
    }

    [Fact]
    public void Write_to_an_unhandled_port_returns_false()
    {
        var bus = new IoBus();
        var device = new RecordingDevice();
        bus.Register(0x60, 1, device);

        Assert.False(bus.Write(0x5f, [1]));
        Assert.Empty(device.Writes);
    }

    [Fact]
    public void Ports_just_past_each_end_of_a_range_are_not_handled()
    {
        var bus = new IoBus();
        bus.Register(0x70, 2, new RecordingDevice());
        Span<byte> data = stackalloc byte[1];

        Assert.False(bus.Read(0x6f, data));
        Assert.True(bus.Read(0x70, data));
        Assert.True(bus.Read(0x71, data));
        Assert.False(bus.Read(0x72, data));
    }

    [Fact]
    public void Many_devices_each_get_their_own_ports()
    {
        var bus = new IoBus();
        var devices = new RecordingDevice[50];
        for (int i = 0; i < devices.Length; i++)
        {
            // Register out of order to exercise the sorted insert.
            int slot = (i * 17) % devices.Length;
            devices[slot] = new RecordingDevice { ReadValue = (byte)slot };
            bus.Register((ushort)(0x1000 + (slot * 8)), 4, devices[slot]);
        }

        Span<byte> data = stackalloc byte[1];
        for (int slot = 0; slot < devices.Length; slot++)
        {
            Assert.True(bus.Read((ushort)(0x1000 + (slot * 8) + 3), data));
            Assert.Equal(slot, data[0]);
            Assert.False(bus.Read((ushort)(0x1000 + (slot * 8) + 4), data));
        }
    }

    [Fact]
    public void Overlapping_registration_is_rejected_naming_both_ranges()
    {
        var bus = new IoBus();
        bus.Register(0x3f8, 8, new RecordingDevice());

        ArgumentException error = Assert.Throws<ArgumentException>(() => bus.Register(0x3fc, 8, new RecordingDevice()));

        Assert.Contains("0x03fc-0x0403", error.Message, StringComparison.Ordinal);
        Assert.Contains("0x03f8-0x03ff", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Registration_overlapping_the_start_of_a_later_range_is_rejected()
    {
        var bus = new IoBus();
        bus.Register(0x64, 1, new RecordingDevice());

        Assert.Throws<ArgumentException>(() => bus.Register(0x60, 5, new RecordingDevice()));
    }

    [Fact]
    public void Adjacent_ranges_are_accepted()
    {
        var bus = new IoBus();
        bus.Register(0x60, 1, new RecordingDevice());
        bus.Register(0x61, 1, new RecordingDevice());
        bus.Register(0x5f, 1, new RecordingDevice());
    }

    [Fact]
    public void Empty_range_is_rejected()
    {
        var bus = new IoBus();
        Assert.Throws<ArgumentOutOfRangeException>(() => bus.Register(0x80, 0, new RecordingDevice()));
    }

    [Fact]
    public void Range_past_port_ffff_is_rejected()
    {
        var bus = new IoBus();
        Assert.Throws<ArgumentOutOfRangeException>(() => bus.Register(0xfffe, 4, new RecordingDevice()));
    }

    [Fact]
    public void Range_ending_at_port_ffff_is_accepted()
    {
        var bus = new IoBus();
        bus.Register(0xfffc, 4, new RecordingDevice());
        Span<byte> data = stackalloc byte[1];
        Assert.True(bus.Read(0xffff, data));
    }

    [Fact]
    public async Task Lookups_racing_with_registration_always_see_a_consistent_map()
    {
        var bus = new IoBus();
        bus.Register(0x10, 1, new RecordingDevice { ReadValue = 7 });
        using var stop = new CancellationTokenSource();
        int bad = 0;
        Task[] readers = [.. Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            byte[] data = new byte[1];
            while (!stop.IsCancellationRequested)
            {
                if (!bus.Read(0x10, data) || data[0] != 7)
                {
                    Interlocked.Increment(ref bad);
                }
            }
        }, TestContext.Current.CancellationToken))];

        for (int i = 0; i < 2000; i++)
        {
            bus.Register((ushort)(0x100 + i), 1, new RecordingDevice());
        }
        stop.Cancel();
        await Task.WhenAll(readers);

        Assert.Equal(0, bad);
    }
}

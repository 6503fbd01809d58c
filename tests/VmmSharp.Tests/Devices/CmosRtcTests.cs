using VmmSharp.Devices.Legacy;
using Xunit;

namespace VmmSharp.Tests.Devices;

public class CmosRtcTests
{
    // Tuesday 2024-03-05 15:07:09 UTC.
    private static readonly FixedTimeProvider Clock = new(new DateTimeOffset(2024, 3, 5, 15, 7, 9, TimeSpan.Zero));

    private static byte ReadCmos(CmosRtc rtc, byte index)
    {
        rtc.Write(0, [index]);
        Span<byte> data = stackalloc byte[1];
        rtc.Read(1, data);
        return data[0];
    }

    private static void WriteCmos(CmosRtc rtc, byte index, byte value)
    {
        rtc.Write(0, [index]);
        rtc.Write(1, [value]);
    }

    [Fact]
    public void Time_reads_in_BCD_by_default()
    {
        var rtc = new CmosRtc(0, 0, Clock);

        Assert.Equal(0x09, ReadCmos(rtc, 0x00));
        Assert.Equal(0x07, ReadCmos(rtc, 0x02));
        Assert.Equal(0x15, ReadCmos(rtc, 0x04));
        Assert.Equal(0x03, ReadCmos(rtc, 0x06)); // Tuesday; Sunday is 1
        Assert.Equal(0x05, ReadCmos(rtc, 0x07));
        Assert.Equal(0x03, ReadCmos(rtc, 0x08));
        Assert.Equal(0x24, ReadCmos(rtc, 0x09));
        Assert.Equal(0x20, ReadCmos(rtc, 0x32));
    }

    [Fact]
    public void Time_reads_in_binary_when_register_B_asks()
    {
        var rtc = new CmosRtc(0, 0, Clock);
        WriteCmos(rtc, 0x0b, 0x06);

        Assert.Equal(9, ReadCmos(rtc, 0x00));
        Assert.Equal(7, ReadCmos(rtc, 0x02));
        Assert.Equal(15, ReadCmos(rtc, 0x04));
        Assert.Equal(24, ReadCmos(rtc, 0x09));
        Assert.Equal(20, ReadCmos(rtc, 0x32));
    }

    [Fact]
    public void Hours_in_12_hour_mode_set_bit_7_after_noon()
    {
        var rtc = new CmosRtc(0, 0, Clock);
        WriteCmos(rtc, 0x0b, 0x00); // BCD, 12-hour

        Assert.Equal(0x83, ReadCmos(rtc, 0x04));
    }

    [Fact]
    public void Midnight_in_12_hour_mode_reads_12_am()
    {
        var rtc = new CmosRtc(0, 0, new FixedTimeProvider(new DateTimeOffset(2024, 1, 1, 0, 30, 0, TimeSpan.Zero)));
        WriteCmos(rtc, 0x0b, 0x04); // binary, 12-hour

        Assert.Equal(12, ReadCmos(rtc, 0x04));
    }

    [Fact]
    public void Register_A_never_reports_an_update_in_progress()
    {
        var rtc = new CmosRtc(0, 0, Clock);
        WriteCmos(rtc, 0x0a, 0xa6);

        Assert.Equal(0x26, ReadCmos(rtc, 0x0a));
    }

    [Fact]
    public void Register_D_reports_valid_RAM_and_time()
    {
        var rtc = new CmosRtc(0, 0, Clock);
        Assert.Equal(0x80, ReadCmos(rtc, 0x0d));
    }

    [Fact]
    public void Bit_7_of_the_index_masks_NMI_and_is_not_part_of_the_index()
    {
        var rtc = new CmosRtc(0, 0, Clock);

        Assert.Equal(0x09, ReadCmos(rtc, 0x80));
        Assert.True(rtc.NmiMasked);
    }

    [Fact]
    public void Ordinary_CMOS_bytes_keep_what_the_guest_writes()
    {
        var rtc = new CmosRtc(0, 0, Clock);
        WriteCmos(rtc, 0x40, 0x5a);
        Assert.Equal(0x5a, ReadCmos(rtc, 0x40));
    }

    [Fact]
    public void Memory_sizes_for_a_small_guest()
    {
        var rtc = new CmosRtc(32UL << 20, 0, Clock); // 32 MiB

        Assert.Equal(640, ReadCmos(rtc, 0x15) | (ReadCmos(rtc, 0x16) << 8));
        Assert.Equal(31 * 1024, ReadCmos(rtc, 0x17) | (ReadCmos(rtc, 0x18) << 8));
        Assert.Equal(31 * 1024, ReadCmos(rtc, 0x30) | (ReadCmos(rtc, 0x31) << 8));
        Assert.Equal(256, ReadCmos(rtc, 0x34) | (ReadCmos(rtc, 0x35) << 8)); // 16 MiB in 64 KiB blocks
        Assert.Equal(0, ReadCmos(rtc, 0x5b) | ReadCmos(rtc, 0x5c) | ReadCmos(rtc, 0x5d));
    }

    [Fact]
    public void Memory_sizes_cap_extended_memory_and_count_memory_above_4G()
    {
        var rtc = new CmosRtc(3UL << 30, 6UL << 30, Clock); // 3 GiB low, 6 GiB high

        Assert.Equal(0xffff, ReadCmos(rtc, 0x17) | (ReadCmos(rtc, 0x18) << 8));
        Assert.Equal((int)(((3UL << 30) - (16UL << 20)) >> 16), ReadCmos(rtc, 0x34) | (ReadCmos(rtc, 0x35) << 8));
        Assert.Equal((int)((6UL << 30) >> 16), ReadCmos(rtc, 0x5b) | (ReadCmos(rtc, 0x5c) << 8) | (ReadCmos(rtc, 0x5d) << 16));
    }

    [Fact]
    public void Base_memory_is_the_RAM_size_when_below_640K()
    {
        var rtc = new CmosRtc(512UL << 10, 0, Clock);

        Assert.Equal(512, ReadCmos(rtc, 0x15) | (ReadCmos(rtc, 0x16) << 8));
        Assert.Equal(0, ReadCmos(rtc, 0x17) | ReadCmos(rtc, 0x18));
    }

    [Fact]
    public void Index_port_reads_all_ones()
    {
        var rtc = new CmosRtc(0, 0, Clock);
        Span<byte> data = stackalloc byte[1];
        rtc.Read(0, data);
        Assert.Equal(0xff, data[0]);
    }

    [Fact]
    public void Random_guest_accesses_never_throw()
    {
        var rtc = new CmosRtc(1UL << 30, 0, Clock);
        var random = new Random(146818);
        byte[] buffer = new byte[4];
        for (int i = 0; i < 3000; i++)
        {
            random.NextBytes(buffer);
            var offset = (ushort)random.Next(0, 3);
            int width = 1 << random.Next(0, 3);
            if (random.Next(2) == 0)
            {
                rtc.Write(offset, buffer.AsSpan(0, width));
            }
            else
            {
                rtc.Read(offset, buffer.AsSpan(0, width));
            }
        }
    }
}

using VmmSharp.Devices.Legacy;

namespace VmmSharp.Tests.Devices;

public class CmosRtcStateTests
{
    private static byte Read(CmosRtc rtc, byte index)
    {
        rtc.Write(0, [index]);
        Span<byte> data = stackalloc byte[1];
        rtc.Read(1, data);
        return data[0];
    }

    [Fact]
    public void Cmos_bytes_the_index_and_the_nmi_mask_come_back()
    {
        var rtc = new CmosRtc(64 << 20);
        rtc.Write(0, [0x40]);
        rtc.Write(1, [0x5a]);
        rtc.Write(0, [0x0b]);
        rtc.Write(1, [0x06]); // binary, 24-hour
        rtc.Write(0, [0x80 | 0x41]); // index 0x41 with NMI masked
        var fresh = new CmosRtc(1 << 20);

        StateRoundTrip.Copy(rtc, fresh);

        Assert.True(fresh.NmiMasked);
        Span<byte> data = stackalloc byte[1];
        fresh.Read(1, data);
        Assert.Equal(0, data[0]); // 0x41, the saved index, was never written
        Assert.Equal(0x5a, Read(fresh, 0x40));
        Assert.Equal(0x06, Read(fresh, 0x0b));
        Assert.Equal(Read(rtc, 0x34), Read(fresh, 0x34)); // the memory sizes are the snapshot's
    }

    [Fact]
    public void The_clock_reads_host_time_after_restore()
    {
        var before = new FixedTimeProvider(new DateTimeOffset(2020, 1, 2, 3, 4, 5, TimeSpan.Zero));
        var after = new FixedTimeProvider(new DateTimeOffset(2031, 6, 7, 8, 9, 10, TimeSpan.Zero));
        var rtc = new CmosRtc(1 << 20, 0, before);
        var fresh = new CmosRtc(1 << 20, 0, after);

        StateRoundTrip.Copy(rtc, fresh);

        Assert.Equal(0x31, Read(fresh, 0x09)); // BCD year of the host's clock now, not of the snapshot
    }

    [Fact]
    public void An_index_past_the_cmos_is_refused()
        => Assert.Contains("index", StateRoundTrip.Refused(new CmosRtc(1 << 20), StateRoundTrip.WithByte(StateRoundTrip.Save(new CmosRtc(1 << 20)), 128, 0x80)), StringComparison.Ordinal);

    [Fact]
    public void A_truncated_state_is_refused()
        => Assert.Contains("cmos memory", StateRoundTrip.Refused(new CmosRtc(1 << 20), StateRoundTrip.Truncated(StateRoundTrip.Save(new CmosRtc(1 << 20)), 10)), StringComparison.Ordinal);
}

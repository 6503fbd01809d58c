using System.Buffers.Binary;
using VmmSharp.Devices.Legacy;
using VmmSharp.Fuzz.Support;

namespace VmmSharp.Fuzz.Targets.Devices;

/// <summary>
/// The CMOS RTC: a 24-byte prefix sets the clock's instant and the RAM sizes the constructor encodes (any values), then
/// index and data port accesses follow.
/// </summary>
internal sealed class CmosRtcTarget : IFuzzTarget
{
    private const int PrefixLength = 24;

    public string Name => "cmos-rtc";

    public void Run(ReadOnlySpan<byte> input)
    {
        Span<byte> prefix = stackalloc byte[PrefixLength];
        prefix.Clear();
        input[..Math.Min(input.Length, PrefixLength)].CopyTo(prefix);
        long ticks = (long)(BinaryPrimitives.ReadUInt64LittleEndian(prefix) % (ulong)DateTime.MaxValue.Ticks);
        var rtc = new CmosRtc(BinaryPrimitives.ReadUInt64LittleEndian(prefix[8..]), BinaryPrimitives.ReadUInt64LittleEndian(prefix[16..]),
            new FixedTime(new DateTimeOffset(ticks, TimeSpan.Zero)));
        foreach (PortOp op in PortProgram.Decode(input.Length > PrefixLength ? input[PrefixLength..] : []))
        {
            op.ApplyTo(rtc);
        }
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        static byte[] Prefix(DateTime now, ulong below4G, ulong above4G)
        {
            byte[] p = new byte[PrefixLength];
            BinaryPrimitives.WriteUInt64LittleEndian(p, (ulong)now.Ticks);
            BinaryPrimitives.WriteUInt64LittleEndian(p.AsSpan(8), below4G);
            BinaryPrimitives.WriteUInt64LittleEndian(p.AsSpan(16), above4G);
            return p;
        }
        var clock = new PortProgram.Builder();
        foreach (int register in new[] { 0x0a, 0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32, 0x0b, 0x0c, 0x0d })
        {
            clock.Write(0, (uint)register).Read(1);
        }
        yield return ("clock-bcd.bin", [.. Prefix(new DateTime(2026, 12, 1, 18, 59, 7, DateTimeKind.Utc), 512 << 20, 0), .. clock.ToArray()]);
        // Binary 12-hour mode after noon, NMI masked, memory sizes read back, a write to plain CMOS memory.
        yield return ("binary-12h.bin", [.. Prefix(new DateTime(1999, 12, 31, 23, 59, 59, DateTimeKind.Utc), 3UL << 30, 5UL << 30),
            .. new PortProgram.Builder().Write(0, 0x0b).Write(1, 0x04).Write(0, 0x84).Read(1).Write(0, 0x34).Read(1).Write(0, 0x5b).Read(1)
                .Write(0, 0x40).Write(1, 0x99).Read(1).Read(0).Read(1, 2).Write(0, 0x0a, 2).ToArray()]);
    }
}

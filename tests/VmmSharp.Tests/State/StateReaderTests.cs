using VmmSharp.State;

namespace VmmSharp.Tests.State;

public class StateReaderTests
{
    private sealed class Counter : IStateful
    {
        public ulong Value { get; set; }

        public ushort StateVersion => 2;

        public void SaveState(StateWriter writer) => writer.WriteUInt64(Value);

        public void RestoreState(ref StateReader reader, ushort version)
        {
            StateFormatException.ThrowIfUnknownVersion("counter", version, StateVersion);
            Value = reader.ReadUInt64("value");
        }
    }

    [Fact]
    public void FieldsComeBackInTheOrderTheyWereWritten()
    {
        var writer = new StateWriter();
        writer.WriteByte(7);
        writer.WriteBool(true);
        writer.WriteUInt16(0xbeef);
        writer.WriteInt32(-5);
        writer.WriteUInt64(ulong.MaxValue - 1);
        writer.WriteBytes([1, 2, 3]);
        writer.WriteString("vda");

        var reader = new StateReader(writer.WrittenSpan, "test");
        Assert.Equal(7, reader.ReadByte("a"));
        Assert.True(reader.ReadBool("b"));
        Assert.Equal(0xbeef, reader.ReadUInt16("c"));
        Assert.Equal(-5, reader.ReadInt32("d"));
        Assert.Equal(ulong.MaxValue - 1, reader.ReadUInt64("e"));
        Assert.Equal([1, 2, 3], reader.ReadBytes(16, "f").ToArray());
        Assert.Equal("vda", reader.ReadString(16, "g"));
        reader.EnsureEnd();
    }

    [Fact]
    public void TruncatedStateNamesTheFieldItEndedBefore()
    {
        var writer = new StateWriter();
        writer.WriteUInt16(1);
        var error = Assert.Throws<StateFormatException>(() => new StateReader(writer.WrittenSpan, "uart").ReadUInt32("divisor"));
        Assert.Contains("uart", error.Message, StringComparison.Ordinal);
        Assert.Contains("divisor", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SavedLengthAboveTheBoundIsRefusedBeforeAnyRead()
    {
        var writer = new StateWriter();
        writer.WriteInt32(int.MaxValue);
        var error = Assert.Throws<StateFormatException>(() => new StateReader(writer.WrittenSpan, "fifo").ReadBytes(64, "bytes"));
        Assert.Contains("2147483647", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SectionCarriesItsVersionAndMustBeReadWhole()
    {
        var writer = new StateWriter();
        writer.WriteSection(new Counter { Value = 42 });
        var restored = new Counter();
        var reader = new StateReader(writer.WrittenSpan, "machine");
        reader.ReadSection(restored, "counter");
        reader.EnsureEnd();
        Assert.Equal(42ul, restored.Value);

        // A section holding more than the component reads is refused.
        var longer = new StateWriter();
        longer.WriteUInt16(2);
        longer.WriteInt32(9);
        longer.WriteUInt64(1);
        longer.WriteByte(0);
        Assert.Throws<StateFormatException>(() => new StateReader(longer.WrittenSpan, "machine").ReadSection(new Counter(), "counter"));
    }

    [Fact]
    public void UnknownVersionIsRefused()
    {
        var writer = new StateWriter();
        writer.WriteUInt16(3);
        writer.WriteInt32(8);
        writer.WriteUInt64(1);
        var error = Assert.Throws<StateFormatException>(() => new StateReader(writer.WrittenSpan, "machine").ReadSection(new Counter(), "counter"));
        Assert.Contains("version 3", error.Message, StringComparison.Ordinal);
    }
}

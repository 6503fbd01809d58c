using VmmSharp.State;

namespace VmmSharp.Tests.Devices;

/// <summary>Saves a component as a section and restores it into another, as a snapshot does.</summary>
internal static class StateRoundTrip
{
    public static byte[] Save(IStateful component)
    {
        var writer = new StateWriter();
        writer.WriteSection(component);
        return writer.WrittenSpan.ToArray();
    }

    public static void Restore(IStateful component, byte[] state, string name = "device")
    {
        var reader = new StateReader(state, "test");
        reader.ReadSection(component, name);
        reader.EnsureEnd();
    }

    public static void Copy(IStateful from, IStateful to) => Restore(to, Save(from));

    /// <summary>Restoring <paramref name="state"/> fails; returns the message.</summary>
    public static string Refused(IStateful component, byte[] state)
        => Assert.Throws<StateFormatException>(() => Restore(component, state)).Message;

    /// <summary>The state with its section's version replaced.</summary>
    public static byte[] WithVersion(byte[] state, ushort version)
    {
        byte[] copy = (byte[])state.Clone();
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(copy, version);
        return copy;
    }

    /// <summary>The state with one byte of the component's own fields (after the 6-byte section header) replaced.</summary>
    public static byte[] WithByte(byte[] state, int fieldOffset, byte value)
    {
        byte[] copy = (byte[])state.Clone();
        copy[6 + fieldOffset] = value;
        return copy;
    }

    /// <summary>The state cut short by <paramref name="bytes"/>, with the section length still claiming it all.</summary>
    public static byte[] Truncated(byte[] state, int bytes)
    {
        byte[] copy = state[..^bytes];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(copy.AsSpan(2), copy.Length - 6);
        return copy;
    }
}

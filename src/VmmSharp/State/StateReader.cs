using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace VmmSharp.State;

/// <summary>
/// Reads back the fields a <see cref="StateWriter"/> wrote. Every read is bounds-checked: a truncated state
/// raises <see cref="StateFormatException"/> naming the field, never reads past the end.
/// </summary>
public ref struct StateReader
{
    private readonly ReadOnlySpan<byte> _state;
    private readonly string _component;
    private int _position;

    /// <summary>Creates a reader over <paramref name="state"/>.</summary>
    /// <param name="state">The saved bytes.</param>
    /// <param name="component">What the state belongs to, for error messages.</param>
    public StateReader(ReadOnlySpan<byte> state, string component)
    {
        _state = state;
        _component = component ?? "state";
        _position = 0;
    }

    /// <summary>What the state belongs to, as error messages name it.</summary>
    public readonly string Component => _component;

    /// <summary>The number of bytes not read yet.</summary>
    public readonly int Remaining => _state.Length - _position;

    /// <summary>Reads a byte.</summary>
    public byte ReadByte(string field) => Take(1, field)[0];

    /// <summary>Reads a Boolean written by <see cref="StateWriter.WriteBool"/>; any other byte is an error.</summary>
    public bool ReadBool(string field)
    {
        byte value = ReadByte(field);
        return value switch
        {
            0 => false,
            1 => true,
            _ => throw Invalid(field, value, "is not 0 or 1"),
        };
    }

    /// <summary>Reads a 16-bit value.</summary>
    public ushort ReadUInt16(string field) => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, field));

    /// <summary>Reads a 32-bit value.</summary>
    public uint ReadUInt32(string field) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, field));

    /// <summary>Reads a signed 32-bit value.</summary>
    public int ReadInt32(string field) => BinaryPrimitives.ReadInt32LittleEndian(Take(4, field));

    /// <summary>Reads a 64-bit value.</summary>
    public ulong ReadUInt64(string field) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, field));

    /// <summary>Reads a signed 64-bit value.</summary>
    public long ReadInt64(string field) => BinaryPrimitives.ReadInt64LittleEndian(Take(8, field));

    /// <summary>Reads <paramref name="length"/> bytes written by <see cref="StateWriter.WriteRaw"/>.</summary>
    public ReadOnlySpan<byte> ReadRaw(int length, string field) => Take(length, field);

    /// <summary>Reads bytes written by <see cref="StateWriter.WriteBytes"/>, refusing more than <paramref name="maxLength"/>.</summary>
    /// <param name="maxLength">The most the component accepts: a saved length never decides an allocation unbounded.</param>
    /// <param name="field">The field's name, for the error message.</param>
    public ReadOnlySpan<byte> ReadBytes(int maxLength, string field)
    {
        int length = ReadInt32(field);
        if (length < 0 || length > maxLength)
        {
            throw Invalid(field, length, $"is not a length from 0 to {maxLength}");
        }
        return Take(length, field);
    }

    /// <summary>Reads a blittable struct written by <see cref="StateWriter.WriteStruct"/>: exactly its size in bytes.</summary>
    /// <param name="value">Receives the bytes.</param>
    /// <param name="field">The field's name, for the error message.</param>
    public void ReadStruct<T>(ref T value, string field)
        where T : unmanaged
    {
        Span<byte> target = MemoryMarshal.AsBytes(new Span<T>(ref value));
        ReadOnlySpan<byte> bytes = ReadBytes(target.Length, field);
        if (bytes.Length != target.Length)
        {
            throw Invalid($"{field} length", bytes.Length, $"is not {target.Length}");
        }
        bytes.CopyTo(target);
    }

    /// <summary>Reads a string written by <see cref="StateWriter.WriteString"/>, of at most <paramref name="maxBytes"/> UTF-8 bytes.</summary>
    public string ReadString(int maxBytes, string field)
    {
        ReadOnlySpan<byte> bytes = ReadBytes(maxBytes, field);
        try
        {
            return new UTF8Encoding(false, true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw new StateFormatException($"{_component}: {field} is not valid UTF-8");
        }
    }

    /// <summary>Reads a nested component's section written by <see cref="StateWriter.WriteSection"/> and restores it.</summary>
    /// <param name="component">The component to restore.</param>
    /// <param name="name">The section's name, for error messages.</param>
    /// <exception cref="StateFormatException">The section is truncated, or the component did not read all of it.</exception>
    public void ReadSection(IStateful component, string name)
    {
        ArgumentNullException.ThrowIfNull(component);
        ushort version = ReadUInt16($"{name} version");
        int length = ReadInt32($"{name} length");
        if (length < 0 || length > Remaining)
        {
            throw Invalid($"{name} length", length, $"does not fit the {Remaining} byte(s) left");
        }
        var inner = new StateReader(Take(length, name), $"{_component}/{name}");
        component.RestoreState(ref inner, version);
        inner.EnsureEnd();
    }

    /// <summary>Checks that every byte was read: a longer state than the component expects is an error too.</summary>
    public readonly void EnsureEnd()
    {
        if (Remaining != 0)
        {
            throw new StateFormatException($"{_component}: {Remaining} byte(s) of state left over after the last field");
        }
    }

    /// <summary>Makes the error for a field whose value the component cannot take.</summary>
    /// <param name="field">The field's name.</param>
    /// <param name="value">The value read.</param>
    /// <param name="why">What is wrong with it, e.g. "is not a queue size".</param>
    public readonly StateFormatException Invalid(string field, object value, string why) =>
        new($"{_component}: {field} {value} {why}");

    private ReadOnlySpan<byte> Take(int length, string field)
    {
        if (length < 0 || length > Remaining)
        {
            throw new StateFormatException(
                $"{_component}: state ends before {field} ({Remaining} byte(s) left, {length} needed)");
        }
        ReadOnlySpan<byte> bytes = _state.Slice(_position, length);
        _position += length;
        return bytes;
    }
}

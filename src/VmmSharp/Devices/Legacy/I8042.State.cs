using VmmSharp.State;

namespace VmmSharp.Devices.Legacy;

/// <content>
/// The controller's state in a snapshot: the output buffer's queue (each byte with whether it is the auxiliary
/// device's), the last byte read, the command byte, the output port and the half-done commands.
/// </content>
public sealed partial class I8042 : IStateful
{
    /// <inheritdoc/>
    public ushort StateVersion => 1;

    /// <inheritdoc/>
    public void SaveState(StateWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        lock (_lock)
        {
            writer.WriteByte(_commandByte);
            writer.WriteByte(_outputPort);
            writer.WriteByte(_pendingCommand);
            writer.WriteByte(_pendingKeyboardCommand);
            writer.WriteBool(_lastWriteWasCommand);
            writer.WriteByte(_lastOutput);
            writer.WriteByte((byte)_queueCount);
            for (int i = 0; i < _queueCount; i++)
            {
                int at = (_queueHead + i) % QueueCapacity;
                writer.WriteByte(_queue[at]);
                writer.WriteBool(_queueIsAux[at]);
            }
        }
    }

    /// <inheritdoc/>
    /// <remarks>IRQ 1 and 12 are driven to the levels the restored output buffer gives (restore after the irqchip).</remarks>
    public void RestoreState(ref StateReader reader, ushort version)
    {
        StateFormatException.ThrowIfUnknownVersion(reader.Component, version, StateVersion);
        byte commandByte = reader.ReadByte("command byte");
        byte outputPort = reader.ReadByte("output port");
        byte pending = reader.ReadByte("pending command");
        if (pending is not (0 or 0x60 or 0xd1 or 0xd2 or 0xd3 or 0xd4))
        {
            throw reader.Invalid("pending command", $"0x{pending:x2}", "is not a command that takes a data byte");
        }
        byte pendingKeyboard = reader.ReadByte("pending keyboard command");
        if (pendingKeyboard is not (0 or 0xed or 0xf0 or 0xf3))
        {
            throw reader.Invalid("pending keyboard command", $"0x{pendingKeyboard:x2}", "is not a keyboard command that takes a parameter");
        }
        bool lastWriteWasCommand = reader.ReadBool("last write was command");
        byte lastOutput = reader.ReadByte("last output");
        byte count = reader.ReadByte("queue count");
        if (count > QueueCapacity)
        {
            throw reader.Invalid("queue count", count, $"is more than the output queue's {QueueCapacity}");
        }
        Span<byte> bytes = stackalloc byte[QueueCapacity];
        Span<bool> aux = stackalloc bool[QueueCapacity];
        for (int i = 0; i < count; i++)
        {
            bytes[i] = reader.ReadByte($"queue byte {i}");
            aux[i] = reader.ReadBool($"queue byte {i} aux");
        }
        lock (_lock)
        {
            _commandByte = commandByte;
            _outputPort = outputPort;
            _pendingCommand = pending;
            _pendingKeyboardCommand = pendingKeyboard;
            _lastWriteWasCommand = lastWriteWasCommand;
            _lastOutput = lastOutput;
            bytes.CopyTo(_queue);
            aux.CopyTo(_queueIsAux);
            _queueHead = 0;
            _queueCount = count;
            // Whatever the lines did before, they now say what the output buffer says.
            bool full = count > 0;
            _keyboardLevel = full && !aux[0] && (commandByte & CtrKeyboardInterrupt) != 0;
            _auxLevel = full && aux[0] && (commandByte & CtrAuxInterrupt) != 0;
            _keyboardIrq?.Set(_keyboardLevel);
            _auxIrq?.Set(_auxLevel);
        }
    }
}

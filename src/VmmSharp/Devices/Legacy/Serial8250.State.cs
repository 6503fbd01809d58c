using VmmSharp.State;

namespace VmmSharp.Devices.Legacy;

/// <content>
/// The UART's state in a snapshot (registers, the receive FIFO's bytes, the THRE interrupt latch), and pausing the
/// host side's access to it. The <see cref="Consoles.ConsoleOutput"/> buffer is the host's, not the guest's, and is
/// not saved: its writer thread may run on while the UART is paused.
/// </content>
public sealed partial class Serial8250 : IStateful, IQuiescable
{
    /// <inheritdoc/>
    public ushort StateVersion => 1;

    /// <inheritdoc/>
    /// <remarks>While paused the UART takes no input (<see cref="EnqueueInput"/> returns 0) and ignores the output's
    /// "space available" callbacks, so nothing but a vCPU changes its state.</remarks>
    public void Pause()
    {
        lock (_lock)
        {
            _paused = true;
        }
    }

    /// <inheritdoc/>
    public void Resume()
    {
        lock (_lock)
        {
            _paused = false;
            // The output may have drained while paused: that is a THRE interrupt now.
            TrackTransmitter();
            UpdateIrq();
        }
    }

    /// <inheritdoc/>
    public void SaveState(StateWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        lock (_lock)
        {
            writer.WriteByte(_ier);
            writer.WriteByte(_lcr);
            writer.WriteByte(_mcr);
            writer.WriteByte(_lsrErrors);
            writer.WriteByte(_msrDelta);
            writer.WriteByte(_scratch);
            writer.WriteByte(_divisorLow);
            writer.WriteByte(_divisorHigh);
            writer.WriteBool(_fifoEnabled);
            writer.WriteBool(_thrInterruptPending);
            writer.WriteBool(_transmitterReady);
            writer.WriteByte(_lastReceived);
            Span<byte> fifo = stackalloc byte[FifoCapacity];
            for (int i = 0; i < _rxCount; i++)
            {
                fifo[i] = _rx[(_rxHead + i) % FifoCapacity];
            }
            writer.WriteBytes(fifo[.._rxCount]);
        }
    }

    /// <inheritdoc/>
    /// <remarks>The interrupt line is driven to the level the restored registers give (restore after the irqchip).</remarks>
    public void RestoreState(ref StateReader reader, ushort version)
    {
        StateFormatException.ThrowIfUnknownVersion(reader.Component, version, StateVersion);
        byte ier = Bits(ref reader, "ier", 0x0f);
        byte lcr = reader.ReadByte("lcr");
        byte mcr = Bits(ref reader, "mcr", 0x1f);
        byte lsrErrors = Bits(ref reader, "lsr errors", LsrErrorBits);
        byte msrDelta = Bits(ref reader, "msr delta", MsrDeltaBits);
        byte scratch = reader.ReadByte("scratch");
        byte divisorLow = reader.ReadByte("divisor low");
        byte divisorHigh = reader.ReadByte("divisor high");
        bool fifoEnabled = reader.ReadBool("fifo enabled");
        bool thrPending = reader.ReadBool("thr interrupt pending");
        bool transmitterReady = reader.ReadBool("transmitter ready");
        byte lastReceived = reader.ReadByte("last received");
        ReadOnlySpan<byte> fifo = reader.ReadBytes(FifoCapacity, "receive fifo");
        lock (_lock)
        {
            _ier = ier;
            _lcr = lcr;
            _mcr = mcr;
            _lsrErrors = lsrErrors;
            _msrDelta = msrDelta;
            _scratch = scratch;
            _divisorLow = divisorLow;
            _divisorHigh = divisorHigh;
            _fifoEnabled = fifoEnabled;
            _thrInterruptPending = thrPending;
            _transmitterReady = transmitterReady;
            _lastReceived = lastReceived;
            fifo.CopyTo(_rx);
            _rxHead = 0;
            _rxCount = fifo.Length;
            if (!_paused)
            {
                TrackTransmitter();
            }
            if (!_disposed)
            {
                // Whatever the line did before (another VM, another process), it now says what the registers say.
                _irqLevel = PendingInterrupt() != IirNoInterrupt && (_mcr & (McrOut2 | McrLoop)) == McrOut2;
                _irq.Set(_irqLevel);
            }
        }
    }

    private static byte Bits(ref StateReader reader, string field, byte allowed)
    {
        byte value = reader.ReadByte(field);
        if ((value & ~allowed) != 0)
        {
            throw reader.Invalid(field, $"0x{value:x2}", $"has bits outside 0x{allowed:x2}");
        }
        return value;
    }
}

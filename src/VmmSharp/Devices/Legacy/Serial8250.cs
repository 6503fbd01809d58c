using VmmSharp.Buses;
using VmmSharp.Devices.Consoles;

namespace VmmSharp.Devices.Legacy;

/// <summary>
/// A 16550A-compatible UART, as Linux's 8250 driver and simple polling guests drive it: register it for
/// <see cref="PortCount"/> ports (COM1 is 0x3f8 with IRQ 4, COM2 0x2f8 with IRQ 3).
/// </summary>
/// <remarks>
/// <para>Transmitted bytes go to a <see cref="ConsoleOutput"/>, a bounded buffer drained off the vCPU thread, so a
/// slow or stalled console never holds up the guest's vCPU. While the buffer has room for a FIFO's worth
/// (<see cref="TransmitFifoSize"/> bytes), LSR reports THRE and TEMT and a THRE interrupt follows each write, as
/// if transmission were instant. When the console falls behind and the buffer fills, THRE and TEMT stay clear
/// (back-pressure, as a slow line gives) until the buffer drains, and then the THRE interrupt is raised again.
/// A byte written to THR while THRE is clear is dropped and counted in <see cref="ConsoleOutput.DroppedBytes"/>.</para>
/// <para>Received bytes wait in a <see cref="FifoCapacity"/>-byte FIFO. The receive interrupt is raised as soon
/// as one byte is there (a trigger level of 1), so no character-timeout timer is needed; Linux treats both alike.</para>
/// <para>As on a PC, the interrupt reaches the line only while MCR's OUT2 is set and loopback is off (the
/// board gates the UART's INTR pin with OUT2, and loopback disconnects OUT2).</para>
/// <para>The interrupt is a level that follows IIR: asserted while IIR reports a pending interrupt, OUT2 is set and
/// loopback is off.</para>
/// <para>All state sits behind one lock, so vCPU threads, an input thread and the output's writer thread can call in
/// concurrently. Nothing the guest writes or reads, at any offset, throws or allocates.</para>
/// </remarks>
public sealed partial class Serial8250 : IPioDevice, IDisposable
{
    /// <summary>The number of ports the UART decodes.</summary>
    public const ushort PortCount = 8;

    /// <summary>The number of received bytes the UART holds before <see cref="EnqueueInput"/> refuses more.</summary>
    public const int FifoCapacity = 64;

    /// <summary>
    /// The transmit FIFO of a 16550A: THRE means the output has room for this many bytes, since Linux writes up to a
    /// FIFO's worth per THRE interrupt without looking at LSR in between.
    /// </summary>
    public const int TransmitFifoSize = 16;

    private const byte IerRxData = 0x01;
    private const byte IerThrEmpty = 0x02;
    private const byte IerLineStatus = 0x04;
    private const byte IerModemStatus = 0x08;

    private const byte IirNoInterrupt = 0x01;
    private const byte IirThrEmpty = 0x02;
    private const byte IirRxData = 0x04;
    private const byte IirLineStatus = 0x06;
    private const byte IirModemStatus = 0x00;
    private const byte IirFifoEnabled = 0xc0;

    private const byte FcrEnableFifo = 0x01;
    private const byte FcrClearRx = 0x02;

    private const byte LcrDlab = 0x80;

    private const byte McrDtr = 0x01;
    private const byte McrRts = 0x02;
    private const byte McrOut1 = 0x04;
    private const byte McrOut2 = 0x08;
    private const byte McrLoop = 0x10;

    private const byte LsrDataReady = 0x01;
    private const byte LsrOverrun = 0x02;
    private const byte LsrErrorBits = 0x1e;
    private const byte LsrThrEmpty = 0x20;
    private const byte LsrTransmitterEmpty = 0x40;

    private const byte MsrCts = 0x10;
    private const byte MsrDsr = 0x20;
    private const byte MsrRi = 0x40;
    private const byte MsrDcd = 0x80;
    private const byte MsrDeltaBits = 0x0f;

    private readonly Lock _lock = new();
    private readonly ConsoleOutput _output;
    private readonly IIrqLine _irq;
    private readonly byte[] _rx = new byte[FifoCapacity];
    private int _rxHead;
    private int _rxCount;
    private byte _lastReceived;

    private byte _ier;
    private byte _lcr;
    private byte _mcr;
    private byte _lsrErrors;
    private byte _msrDelta;
    private byte _scratch;
    private byte _divisorLow = 0x0c; // 9600 baud, what a BIOS leaves behind
    private byte _divisorHigh;
    private bool _fifoEnabled;
    private bool _thrInterruptPending;
    private bool _irqLevel;
    private bool _transmitterReady = true;
    private bool _disposed;
    private bool _paused;

    /// <summary>Creates a UART that transmits into <paramref name="output"/> and interrupts through <paramref name="irq"/>.</summary>
    /// <param name="output">Receives transmitted bytes; it may be shared with other devices and outlive this one.</param>
    /// <param name="irq">The UART's interrupt line.</param>
    public Serial8250(ConsoleOutput output, IIrqLine irq)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(irq);
        _output = output;
        _irq = irq;
        _output.SpaceAvailable += OnOutputSpace;
    }

    /// <summary>
    /// Detaches the UART from its output and its interrupt line: once this returns, the output's writer thread no
    /// longer reaches the line (which may belong to a VM about to be disposed). Guest accesses after that still work
    /// but raise no interrupt.
    /// </summary>
    public void Dispose()
    {
        _output.SpaceAvailable -= OnOutputSpace;
        lock (_lock)
        {
            _disposed = true;
        }
    }

    /// <summary>
    /// Hands bytes typed by the user to the guest, raising the receive interrupt if the guest enabled it.
    /// Bytes that do not fit in the FIFO are not taken: the caller offers them again later.
    /// </summary>
    /// <param name="input">The bytes received.</param>
    /// <returns>How many bytes of <paramref name="input"/> the UART took.</returns>
    public int EnqueueInput(ReadOnlySpan<byte> input)
    {
        lock (_lock)
        {
            if (_paused)
            {
                return 0; // offered again after the resume
            }
            if ((_mcr & McrLoop) != 0)
            {
                // In loopback the receiver hears only the transmitter; the line's bytes are lost, as on the chip.
                return input.Length;
            }
            int taken = Math.Min(input.Length, FifoCapacity - _rxCount);
            for (int i = 0; i < taken; i++)
            {
                PushReceived(input[i]);
            }
            UpdateIrq();
            return taken;
        }
    }

    /// <inheritdoc/>
    public void Read(ushort offset, Span<byte> data)
    {
        lock (_lock)
        {
            // A wider access reaches consecutive registers, as the ISA bus splits it into byte cycles.
            for (int i = 0; i < data.Length; i++)
            {
                int register = offset + i;
                data[i] = register < PortCount ? ReadRegister(register) : (byte)0xff;
            }
            TrackTransmitter();
            UpdateIrq();
        }
    }

    /// <inheritdoc/>
    public void Write(ushort offset, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            for (int i = 0; i < data.Length; i++)
            {
                int register = offset + i;
                if (register < PortCount)
                {
                    WriteRegister(register, data[i]);
                }
            }
            TrackTransmitter();
            UpdateIrq();
        }
    }

    private bool Dlab => (_lcr & LcrDlab) != 0;

    /// <summary>THR is empty: in loopback always, otherwise while the output has room for a FIFO's worth.</summary>
    private bool TransmitterReady => (_mcr & McrLoop) != 0 || _output.FreeSpace >= TransmitFifoSize;

    private byte ReadRegister(int register)
    {
        switch (register)
        {
            case 0:
                if (Dlab)
                {
                    return _divisorLow;
                }
                if (_rxCount > 0)
                {
                    _lastReceived = _rx[_rxHead];
                    _rxHead = (_rxHead + 1) % FifoCapacity;
                    _rxCount--;
                }
                // An empty receiver still presents the last byte, like the chip's holding register.
                return _lastReceived;
            case 1:
                return Dlab ? _divisorHigh : _ier;
            case 2:
                byte id = PendingInterrupt();
                if (id == IirThrEmpty)
                {
                    // Reading IIR while it reports THRE acknowledges that interrupt.
                    _thrInterruptPending = false;
                }
                return (byte)(id | (_fifoEnabled ? IirFifoEnabled : 0));
            case 3:
                return _lcr;
            case 4:
                return _mcr;
            case 5:
                byte lsr = (byte)(_lsrErrors | (TransmitterReady ? LsrThrEmpty | LsrTransmitterEmpty : 0) | (_rxCount > 0 ? LsrDataReady : 0));
                _lsrErrors = 0;
                return lsr;
            case 6:
                byte msr = (byte)(ModemStatus() | _msrDelta);
                _msrDelta = 0;
                return msr;
            default:
                return _scratch;
        }
    }

    private void WriteRegister(int register, byte value)
    {
        switch (register)
        {
            case 0:
                if (Dlab)
                {
                    _divisorLow = value;
                }
                else
                {
                    Transmit(value);
                }
                break;
            case 1:
                if (Dlab)
                {
                    _divisorHigh = value;
                }
                else
                {
                    bool thrEnabledNow = (value & IerThrEmpty) != 0 && (_ier & IerThrEmpty) == 0;
                    _ier = (byte)(value & 0x0f);
                    if (thrEnabledNow && TransmitterReady)
                    {
                        // Enabling the interrupt while THR is empty raises it at once; Linux's THRE test expects that.
                        _thrInterruptPending = true;
                    }
                }
                break;
            case 2:
                bool enable = (value & FcrEnableFifo) != 0;
                if ((value & FcrClearRx) != 0 || enable != _fifoEnabled)
                {
                    _rxCount = 0;
                    _rxHead = 0;
                }
                _fifoEnabled = enable;
                break;
            case 3:
                _lcr = value;
                break;
            case 4:
                byte before = ModemStatus();
                _mcr = (byte)(value & 0x1f);
                RecordModemStatusChange(before, ModemStatus());
                break;
            case 7:
                _scratch = value;
                break;
            default:
                // LSR and MSR are read-only (writes are factory test modes on the chip).
                break;
        }
    }

    private void Transmit(byte value)
    {
        if ((_mcr & McrLoop) != 0)
        {
            if (_rxCount == FifoCapacity)
            {
                _lsrErrors |= LsrOverrun;
            }
            else
            {
                PushReceived(value);
            }
        }
        else
        {
            // Never blocks: a full output drops the byte and counts it (the guest wrote while THRE was clear).
            _ = _output.Write(new ReadOnlySpan<byte>(in value));
        }
        // Writing THR acknowledges a THRE interrupt; it comes again once THR is empty (at once, while the output has room).
        _thrInterruptPending = false;
        _transmitterReady = false;
    }

    /// <summary>Latches the THRE interrupt when THR has become empty since the guest last looked.</summary>
    private void TrackTransmitter()
    {
        bool ready = TransmitterReady;
        if (ready && !_transmitterReady)
        {
            _thrInterruptPending = true;
        }
        _transmitterReady = ready;
    }

    /// <summary>The output drained after it had filled up: THR is empty again, which may interrupt the guest.</summary>
    private void OnOutputSpace()
    {
        lock (_lock)
        {
            if (_disposed || _paused)
            {
                return; // a paused UART looks at its transmitter again when it resumes
            }
            TrackTransmitter();
            UpdateIrq();
        }
    }

    private void PushReceived(byte value)
    {
        _rx[(_rxHead + _rxCount) % FifoCapacity] = value;
        _rxCount++;
    }

    /// <summary>The modem status inputs: in loopback the MCR outputs, otherwise a cable that is always ready.</summary>
    private byte ModemStatus()
    {
        if ((_mcr & McrLoop) == 0)
        {
            return MsrDcd | MsrDsr | MsrCts;
        }
        int status = 0;
        status |= (_mcr & McrRts) != 0 ? MsrCts : 0;
        status |= (_mcr & McrDtr) != 0 ? MsrDsr : 0;
        status |= (_mcr & McrOut1) != 0 ? MsrRi : 0;
        status |= (_mcr & McrOut2) != 0 ? MsrDcd : 0;
        return (byte)status;
    }

    private void RecordModemStatusChange(byte before, byte after)
    {
        byte changed = (byte)(before ^ after);
        int delta = 0;
        delta |= (changed & MsrCts) != 0 ? 0x01 : 0;
        delta |= (changed & MsrDsr) != 0 ? 0x02 : 0;
        delta |= (before & MsrRi) != 0 && (after & MsrRi) == 0 ? 0x04 : 0; // trailing edge of RI only
        delta |= (changed & MsrDcd) != 0 ? 0x08 : 0;
        _msrDelta = (byte)((_msrDelta | delta) & MsrDeltaBits);
    }

    /// <summary>The IIR identification of the highest-priority pending interrupt.</summary>
    private byte PendingInterrupt()
    {
        if ((_ier & IerLineStatus) != 0 && (_lsrErrors & LsrErrorBits) != 0)
        {
            return IirLineStatus;
        }
        if ((_ier & IerRxData) != 0 && _rxCount > 0)
        {
            return IirRxData;
        }
        if ((_ier & IerThrEmpty) != 0 && _thrInterruptPending && TransmitterReady)
        {
            return IirThrEmpty;
        }
        if ((_ier & IerModemStatus) != 0 && _msrDelta != 0)
        {
            return IirModemStatus;
        }
        return IirNoInterrupt;
    }

    private void UpdateIrq()
    {
        if (_disposed)
        {
            return; // the line may belong to a VM that is gone
        }
        bool level = PendingInterrupt() != IirNoInterrupt && (_mcr & (McrOut2 | McrLoop)) == McrOut2;
        if (level != _irqLevel)
        {
            _irqLevel = level;
            _irq.Set(level);
        }
    }
}

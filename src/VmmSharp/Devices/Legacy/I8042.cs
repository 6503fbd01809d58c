using VmmSharp.Buses;

namespace VmmSharp.Devices.Legacy;

/// <summary>
/// The PC's i8042 keyboard controller, with just enough of a keyboard behind it for Linux's i8042 and atkbd
/// probes to finish quickly, and its reset line, which Linux pulses (command 0xfe) to reboot.
/// </summary>
/// <remarks>
/// <para>The controller has two ports that are not adjacent, so it offers two devices: register
/// <see cref="DataPort"/> at 0x60 and <see cref="CommandPort"/> at 0x64, one port each. That leaves 0x61-0x63
/// (port B, the PIT gate and speaker) to whoever emulates them.</para>
/// <para>There is no mouse: bytes sent to the auxiliary device are answered with 0xfe (resend), so probing fails
/// fast. Booting Linux with <c>i8042.noaux</c> skips the probe altogether.</para>
/// <para>Each interrupt is a level, as the chip's IRQ pins are: IRQ 1 is asserted while the output buffer holds a
/// keyboard byte and the command byte enables the keyboard interrupt, IRQ 12 likewise for an auxiliary byte. So
/// enabling an interrupt with a byte already waiting raises it, and reading a byte with another behind it lowers the
/// line and raises it again (the chip empties the buffer, then loads the next byte), which an edge-triggered PIC
/// sees as a new interrupt.</para>
/// </remarks>
public sealed partial class I8042
{
    /// <summary>The data port.</summary>
    public const ushort DataPortAddress = 0x60;

    /// <summary>The status (read) and command (write) port.</summary>
    public const ushort CommandPortAddress = 0x64;

    private const byte StatusOutputFull = 0x01;
    private const byte StatusSystem = 0x04;
    private const byte StatusCommand = 0x08;
    private const byte StatusUnlocked = 0x10;
    private const byte StatusAuxData = 0x20;

    private const byte CtrKeyboardInterrupt = 0x01;
    private const byte CtrAuxInterrupt = 0x02;
    private const byte CtrSystem = 0x04;
    private const byte CtrKeyboardDisabled = 0x10;
    private const byte CtrAuxDisabled = 0x20;
    private const byte CtrTranslate = 0x40;

    private const byte OutputPortReset = 0x01; // active low: clearing it resets the CPU
    private const byte OutputPortA20 = 0x02;

    private const int QueueCapacity = 16;

    private readonly Lock _lock = new();
    private readonly Action _reset;
    private readonly IIrqLine? _keyboardIrq;
    private readonly IIrqLine? _auxIrq;
    private readonly byte[] _queue = new byte[QueueCapacity];
    private readonly bool[] _queueIsAux = new bool[QueueCapacity];
    private int _queueHead;
    private int _queueCount;
    private byte _lastOutput;

    // What a BIOS leaves: both interrupts on, system flag set, scancode translation on.
    private byte _commandByte = CtrKeyboardInterrupt | CtrAuxInterrupt | CtrSystem | CtrTranslate;
    private byte _outputPort = OutputPortReset | OutputPortA20;
    private byte _pendingCommand;
    private byte _pendingKeyboardCommand;
    private bool _lastWriteWasCommand;
    private bool _keyboardLevel;
    private bool _auxLevel;

    /// <summary>Creates the controller.</summary>
    /// <param name="reset">Called when the guest pulses the reset line (command 0xfe, or 0xd1 clearing bit 0); it typically reboots or stops the VM.</param>
    /// <param name="keyboardIrq">IRQ 1, asserted while a keyboard byte waits and the command byte enables its interrupt; null for none.</param>
    /// <param name="auxIrq">IRQ 12, asserted while an auxiliary byte waits and the command byte enables its interrupt; null for none.</param>
    public I8042(Action reset, IIrqLine? keyboardIrq = null, IIrqLine? auxIrq = null)
    {
        ArgumentNullException.ThrowIfNull(reset);
        _reset = reset;
        _keyboardIrq = keyboardIrq;
        _auxIrq = auxIrq;
        DataPort = new Port(this, isCommand: false);
        CommandPort = new Port(this, isCommand: true);
    }

    /// <summary>The data port, to register at <see cref="DataPortAddress"/> for one port.</summary>
    public IPioDevice DataPort { get; }

    /// <summary>The status/command port, to register at <see cref="CommandPortAddress"/> for one port.</summary>
    public IPioDevice CommandPort { get; }

    /// <summary>
    /// Types Ctrl+Alt+Del on the keyboard (press, then release), from any thread: Linux's atkbd turns it into a reboot
    /// request (<c>ctrl_alt_del</c>), which Firecracker's API uses to ask a guest to shut down. The scancodes are set 1
    /// while the command byte has translation on (as a BIOS leaves it), set 2 otherwise.
    /// </summary>
    /// <returns>False if the output buffer had no room for the whole sequence (a guest that never reads it); nothing is queued then.</returns>
    public bool SendCtrlAltDel()
    {
        lock (_lock)
        {
            ReadOnlySpan<byte> keys = (_commandByte & CtrTranslate) != 0 ? CtrlAltDelSet1 : CtrlAltDelSet2;
            if (QueueCapacity - _queueCount < keys.Length)
            {
                return false;
            }
            foreach (byte b in keys)
            {
                Enqueue(b, aux: false);
            }
            UpdateIrqs();
        }
        return true;
    }

    // Ctrl, Alt, Del (0xe0-prefixed) down, then up in reverse order.
    private static ReadOnlySpan<byte> CtrlAltDelSet1 => [0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d];

    private static ReadOnlySpan<byte> CtrlAltDelSet2 => [0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14];

    private byte ReadData()
    {
        if (_queueCount > 0)
        {
            _lastOutput = _queue[_queueHead];
            _queueHead = (_queueHead + 1) % QueueCapacity;
            _queueCount--;
            // The buffer is empty for a moment before the next byte loads: the line falls, and rises again below.
            SetLevels(keyboard: false, aux: false);
        }
        // An empty buffer still presents its last byte, as the chip does.
        return _lastOutput;
    }

    private byte ReadStatus()
    {
        int status = StatusUnlocked | (_commandByte & CtrSystem);
        status |= _lastWriteWasCommand ? StatusCommand : 0;
        if (_queueCount > 0)
        {
            status |= StatusOutputFull | (_queueIsAux[_queueHead] ? StatusAuxData : 0);
        }
        return (byte)status;
    }

    /// <returns>Whether the guest asked for a reset.</returns>
    private bool WriteCommand(byte command)
    {
        _lastWriteWasCommand = true;
        _pendingCommand = 0;
        switch (command)
        {
            case 0x20: // read command byte
                Enqueue(_commandByte, aux: false);
                break;
            case 0x60 or 0xd1 or 0xd2 or 0xd3 or 0xd4: // these take the next data byte
                _pendingCommand = command;
                break;
            case 0xa7:
                _commandByte |= CtrAuxDisabled;
                break;
            case 0xa8:
                _commandByte &= unchecked((byte)~CtrAuxDisabled);
                break;
            case 0xa9: // aux interface test: no fault
            case 0xab: // keyboard interface test: no fault
                Enqueue(0x00, aux: false);
                break;
            case 0xaa: // controller self-test: passed
                _commandByte |= CtrSystem;
                Enqueue(0x55, aux: false);
                break;
            case 0xad:
                _commandByte |= CtrKeyboardDisabled;
                break;
            case 0xae:
                _commandByte &= unchecked((byte)~CtrKeyboardDisabled);
                break;
            case 0xc0: // read input port: keyboard not inhibited
                Enqueue(0x80, aux: false);
                break;
            case 0xd0: // read output port
                Enqueue(_outputPort, aux: false);
                break;
            default:
                // 0xf0-0xff pulse the output-port bits whose mask bit is 0; bit 0 is the CPU reset line.
                return (command & 0xf0) == 0xf0 && (command & OutputPortReset) == 0;
        }
        return false;
    }

    /// <returns>Whether the guest asked for a reset.</returns>
    private bool WriteData(byte value)
    {
        _lastWriteWasCommand = false;
        byte command = _pendingCommand;
        _pendingCommand = 0;
        switch (command)
        {
            case 0x60:
                _commandByte = value;
                return false;
            case 0xd1:
                _outputPort = value;
                return (value & OutputPortReset) == 0;
            case 0xd2:
                Enqueue(value, aux: false);
                return false;
            case 0xd3:
                Enqueue(value, aux: true);
                return false;
            case 0xd4:
                Enqueue(0xfe, aux: true); // no mouse: ask for a resend, which fails the probe quickly
                return false;
            default:
                KeyboardReceive(value);
                return false;
        }
    }

    /// <summary>A minimal AT keyboard: acknowledges commands and answers reset, identify and echo.</summary>
    private void KeyboardReceive(byte value)
    {
        if (_pendingKeyboardCommand != 0)
        {
            _pendingKeyboardCommand = 0; // the parameter of LEDs, scancode set or typematic rate
            Enqueue(0xfa, aux: false);
            return;
        }
        switch (value)
        {
            case 0xff: // reset: ACK, then self-test passed
                Enqueue(0xfa, aux: false);
                Enqueue(0xaa, aux: false);
                break;
            case 0xf2: // identify: ACK, then an MF2 keyboard
                Enqueue(0xfa, aux: false);
                Enqueue(0xab, aux: false);
                Enqueue(0x83, aux: false);
                break;
            case 0xee: // echo
                Enqueue(0xee, aux: false);
                break;
            case 0xed or 0xf0 or 0xf3:
                _pendingKeyboardCommand = value;
                Enqueue(0xfa, aux: false);
                break;
            default:
                Enqueue(0xfa, aux: false);
                break;
        }
    }

    private void Enqueue(byte value, bool aux)
    {
        if (_queueCount == QueueCapacity)
        {
            return; // a guest that never reads loses the newest bytes
        }
        int tail = (_queueHead + _queueCount) % QueueCapacity;
        _queue[tail] = value;
        _queueIsAux[tail] = aux;
        _queueCount++;
    }

    /// <summary>Drives both lines from the output buffer's state and the command byte's interrupt enables.</summary>
    private void UpdateIrqs()
    {
        bool full = _queueCount > 0;
        bool aux = full && _queueIsAux[_queueHead];
        SetLevels(
            keyboard: full && !aux && (_commandByte & CtrKeyboardInterrupt) != 0,
            aux: aux && (_commandByte & CtrAuxInterrupt) != 0);
    }

    private void SetLevels(bool keyboard, bool aux)
    {
        if (keyboard != _keyboardLevel)
        {
            _keyboardLevel = keyboard;
            _keyboardIrq?.Set(keyboard);
        }
        if (aux != _auxLevel)
        {
            _auxLevel = aux;
            _auxIrq?.Set(aux);
        }
    }

    /// <summary>One of the controller's two ports, as the bus sees it.</summary>
    private sealed class Port(I8042 controller, bool isCommand) : IPioDevice
    {
        public void Read(ushort offset, Span<byte> data)
        {
            data.Fill(0xff);
            if (offset != 0 || data.IsEmpty)
            {
                return;
            }
            lock (controller._lock)
            {
                data[0] = isCommand ? controller.ReadStatus() : controller.ReadData();
                controller.UpdateIrqs();
            }
        }

        public void Write(ushort offset, ReadOnlySpan<byte> data)
        {
            if (offset != 0 || data.IsEmpty)
            {
                return;
            }
            bool reset;
            lock (controller._lock)
            {
                reset = isCommand ? controller.WriteCommand(data[0]) : controller.WriteData(data[0]);
                controller.UpdateIrqs();
            }
            if (reset)
            {
                // Outside the lock: the callback may tear the machine down or reset this device.
                controller._reset();
            }
        }
    }
}

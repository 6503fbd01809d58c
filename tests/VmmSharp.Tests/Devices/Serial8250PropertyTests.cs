using CsCheck;
using VmmSharp.Devices.Consoles;
using VmmSharp.Devices.Legacy;

namespace VmmSharp.Tests.Devices;

/// <summary>
/// The 8250's register state machine against a model of the 16550A datasheet's rules: the divisor latch behind DLAB,
/// read-back registers, the receive FIFO (order, capacity, clearing), LSR's data-ready bit, IIR's receive interrupt and
/// the interrupt line gated by OUT2. The model leaves out what the console changes (the transmit path and THRE) and
/// loopback: the generated programs never transmit, never enable the THRE interrupt and never set LOOP.
/// </summary>
public sealed class Serial8250PropertyTests
{
    private const int Rbr = 0, Ier = 1, Iir = 2, Lcr = 3, Mcr = 4, Lsr = 5, Msr = 6, Scr = 7;

    private enum Kind
    {
        Read,
        Write,
        Receive,
    }

    private readonly record struct Step(Kind Kind, int Register, byte Value, int Count);

    private static readonly Gen<Step> AnyStep = Gen.Select(
        Gen.Frequency((4, Gen.Const(Kind.Read)), (4, Gen.Const(Kind.Write)), (1, Gen.Const(Kind.Receive))),
        Gen.Int[0, 7],
        Gen.Frequency((3, Gen.Byte), (1, Gen.OneOf(Gen.Const((byte)0x80), Gen.Const((byte)0x03), Gen.Const((byte)0x0d), Gen.Const((byte)0x07)))),
        Gen.Int[0, 70],
        (kind, register, value, count) => new Step(kind, register, value, count));

    /// <summary>What the datasheet says the registers hold.</summary>
    private sealed class Model
    {
        public const int FifoCapacity = 64;
        public Queue<byte> Fifo { get; } = new();
        public byte Ier { get; set; }
        public byte Lcr { get; set; }
        public byte Mcr { get; set; }
        public byte Scratch { get; set; }
        public byte DivisorLow { get; set; } = 0x0c;
        public byte DivisorHigh { get; set; }
        public bool FifoEnabled { get; set; }
        public byte LastReceived { get; set; }
        public bool Dlab => (Lcr & 0x80) != 0;
        public bool RxInterrupt => (Ier & 0x01) != 0 && Fifo.Count > 0;
        public bool IrqLevel => RxInterrupt && (Mcr & 0x08) != 0;
    }

    [Fact]
    public void Registers_follow_the_16550_model()
    {
        AnyStep.Array[1, 80].Sample(steps =>
        {
            var irq = new RecordingIrqLine();
            using var output = new ConsoleOutput(Stream.Null);
            using var uart = new Serial8250(output, irq);
            var model = new Model();
            int counter = 0;
            foreach (Step step in steps)
            {
                Run(uart, model, step, ref counter);
                Assert.Equal(model.IrqLevel, irq.Level);
            }
        });
    }

    private static void Run(Serial8250 uart, Model model, Step step, ref int counter)
    {
        switch (step.Kind)
        {
            case Kind.Receive:
                byte[] input = new byte[step.Count];
                for (int i = 0; i < input.Length; i++)
                {
                    input[i] = (byte)counter++;
                }
                int expected = Math.Min(input.Length, Model.FifoCapacity - model.Fifo.Count);
                Assert.Equal(expected, uart.EnqueueInput(input));
                foreach (byte b in input.AsSpan(0, expected))
                {
                    model.Fifo.Enqueue(b);
                }
                break;
            case Kind.Write:
                Write(uart, model, step.Register, step.Value);
                break;
            default:
                Assert.Equal(Expected(model, step.Register), Read(uart, step.Register));
                break;
        }
    }

    private static void Write(Serial8250 uart, Model model, int register, byte value)
    {
        switch (register)
        {
            case Rbr when model.Dlab:
                model.DivisorLow = value;
                break;
            case Rbr:
                return; // transmitting is the console's business, outside this model
            case Ier when model.Dlab:
                model.DivisorHigh = value;
                break;
            case Ier:
                value &= 0x0d; // never the THRE interrupt
                model.Ier = value;
                break;
            case Iir: // FCR
                bool enable = (value & 0x01) != 0;
                if ((value & 0x02) != 0 || enable != model.FifoEnabled)
                {
                    model.Fifo.Clear();
                }
                model.FifoEnabled = enable;
                break;
            case Lcr:
                model.Lcr = value;
                break;
            case Mcr:
                value &= 0x0f; // never loopback
                model.Mcr = value;
                break;
            case Scr:
                model.Scratch = value;
                break;
            default:
                break; // LSR and MSR are read-only
        }
        uart.Write((ushort)register, [value]);
    }

    private static byte Read(Serial8250 uart, int register)
    {
        Span<byte> data = stackalloc byte[1];
        uart.Read((ushort)register, data);
        return data[0];
    }

    /// <summary>What a read returns, applying its side effects to the model (THR is never written, so LSR keeps THRE and TEMT).</summary>
    private static byte Expected(Model model, int register)
    {
        switch (register)
        {
            case Rbr when model.Dlab:
                return model.DivisorLow;
            case Rbr:
                if (model.Fifo.Count > 0)
                {
                    model.LastReceived = model.Fifo.Dequeue();
                }
                return model.LastReceived;
            case Ier:
                return model.Dlab ? model.DivisorHigh : model.Ier;
            case Iir:
                return (byte)((model.RxInterrupt ? 0x04 : 0x01) | (model.FifoEnabled ? 0xc0 : 0));
            case Lcr:
                return model.Lcr;
            case Mcr:
                return model.Mcr;
            case Lsr:
                return (byte)(0x60 | (model.Fifo.Count > 0 ? 0x01 : 0));
            case Msr:
                return 0xb0; // DCD, DSR and CTS: a cable that is always ready, and nothing changed
            default:
                return model.Scratch;
        }
    }
}

using CsCheck;
using VmmSharp.Devices.Legacy;

namespace VmmSharp.Tests.Devices;

/// <summary>
/// The i8042's command and data state machine against a model written from the controller's command table: the
/// 16-byte output buffer (order, the keyboard/aux flag, dropping when full, the last byte re-read when empty), the
/// status register, the command byte, commands that take a data byte, the keyboard's replies and the reset line.
/// The interrupt lines are left to the example tests (their edge or level behaviour is the console's to change).
/// </summary>
public sealed class I8042PropertyTests
{
    private enum Kind
    {
        ReadData,
        ReadStatus,
        WriteData,
        WriteCommand,
    }

    private readonly record struct Step(Kind Kind, byte Value);

    // Commands and keyboard bytes the controller knows, often; any byte, sometimes.
    private static readonly byte[] Commands = [0x20, 0x60, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xad, 0xae, 0xc0, 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xfe, 0xff, 0xf0];
    private static readonly byte[] KeyboardBytes = [0xff, 0xf2, 0xee, 0xed, 0xf0, 0xf3, 0xf4, 0x07, 0x00, 0xfe];

    // Writes outnumber reads, so that the output buffer fills up now and then.
    private static readonly Gen<Step> AnyStep = Gen.Frequency(
        (2, Gen.Const(new Step(Kind.ReadData, 0))),
        (1, Gen.Const(new Step(Kind.ReadStatus, 0))),
        (3, Gen.Frequency((3, Gen.OneOf(Commands)), (1, Gen.Byte)).Select(v => new Step(Kind.WriteCommand, v))),
        (4, Gen.Frequency((3, Gen.OneOf(KeyboardBytes)), (1, Gen.Byte)).Select(v => new Step(Kind.WriteData, v))));

    private sealed class Model
    {
        public Queue<(byte Value, bool Aux)> Output { get; } = new();
        public byte LastOutput { get; set; }
        public byte CommandByte { get; set; } = 0x47;
        public byte OutputPort { get; set; } = 0x03;
        public byte Pending { get; set; }
        public bool KeyboardParameter { get; set; }
        public bool LastWasCommand { get; set; }
        public int Resets { get; set; }

        public void Put(byte value, bool aux = false)
        {
            if (Output.Count < 16)
            {
                Output.Enqueue((value, aux));
            }
        }
    }

    [Fact]
    public void Ports_follow_the_controller_model()
    {
        AnyStep.Array[1, 100].Sample(steps =>
        {
            int resets = 0;
            var controller = new I8042(() => resets++);
            var model = new Model();
            foreach (Step step in steps)
            {
                switch (step.Kind)
                {
                    case Kind.ReadData:
                        if (model.Output.Count > 0)
                        {
                            model.LastOutput = model.Output.Dequeue().Value;
                        }
                        Assert.Equal(model.LastOutput, In(controller.DataPort));
                        break;
                    case Kind.ReadStatus:
                        Assert.Equal(Status(model), In(controller.CommandPort));
                        break;
                    case Kind.WriteCommand:
                        Command(model, step.Value);
                        controller.CommandPort.Write(0, [step.Value]);
                        break;
                    default:
                        Data(model, step.Value);
                        controller.DataPort.Write(0, [step.Value]);
                        break;
                }
                Assert.Equal(model.Resets, resets);
            }
            // Drain the output buffer: what stayed in it (and what was dropped when it was full) shows only here.
            for (int i = 0; i <= 16; i++)
            {
                Assert.Equal(Status(model), In(controller.CommandPort));
                if (model.Output.Count > 0)
                {
                    model.LastOutput = model.Output.Dequeue().Value;
                }
                Assert.Equal(model.LastOutput, In(controller.DataPort));
            }
        });
    }

    private static byte In(VmmSharp.Buses.IPioDevice port)
    {
        Span<byte> data = stackalloc byte[1];
        port.Read(0, data);
        return data[0];
    }

    private static byte Status(Model m)
    {
        int status = 0x10 | (m.CommandByte & 0x04) | (m.LastWasCommand ? 0x08 : 0);
        if (m.Output.TryPeek(out (byte Value, bool Aux) head))
        {
            status |= 0x01 | (head.Aux ? 0x20 : 0);
        }
        return (byte)status;
    }

    private static void Command(Model m, byte command)
    {
        m.LastWasCommand = true;
        m.Pending = 0;
        switch (command)
        {
            case 0x20:
                m.Put(m.CommandByte);
                break;
            case 0x60 or 0xd1 or 0xd2 or 0xd3 or 0xd4:
                m.Pending = command;
                break;
            case 0xa7:
                m.CommandByte |= 0x20;
                break;
            case 0xa8:
                m.CommandByte &= 0xdf;
                break;
            case 0xa9 or 0xab:
                m.Put(0x00);
                break;
            case 0xaa:
                m.CommandByte |= 0x04;
                m.Put(0x55);
                break;
            case 0xad:
                m.CommandByte |= 0x10;
                break;
            case 0xae:
                m.CommandByte &= 0xef;
                break;
            case 0xc0:
                m.Put(0x80);
                break;
            case 0xd0:
                m.Put(m.OutputPort);
                break;
            case >= 0xf0 when (command & 0x01) == 0:
                m.Resets++; // pulsing output-port bit 0, the CPU reset line
                break;
            default:
                break;
        }
    }

    private static void Data(Model m, byte value)
    {
        m.LastWasCommand = false;
        byte pending = m.Pending;
        m.Pending = 0;
        switch (pending)
        {
            case 0x60:
                m.CommandByte = value;
                return;
            case 0xd1:
                m.OutputPort = value;
                if ((value & 0x01) == 0)
                {
                    m.Resets++;
                }
                return;
            case 0xd2:
                m.Put(value);
                return;
            case 0xd3:
                m.Put(value, aux: true);
                return;
            case 0xd4:
                m.Put(0xfe, aux: true); // no mouse
                return;
            default:
                break;
        }
        // The keyboard: every byte is acknowledged; some commands answer more or take a parameter.
        if (m.KeyboardParameter)
        {
            m.KeyboardParameter = false;
            m.Put(0xfa);
            return;
        }
        m.Put(value == 0xee ? (byte)0xee : (byte)0xfa);
        switch (value)
        {
            case 0xff:
                m.Put(0xaa);
                break;
            case 0xf2:
                m.Put(0xab);
                m.Put(0x83);
                break;
            case 0xed or 0xf0 or 0xf3:
                m.KeyboardParameter = true;
                break;
            default:
                break;
        }
    }
}

using VmmSharp.Devices.Consoles;
using VmmSharp.Devices.Legacy;
using VmmSharp.Devices.Virtio;
using VmmSharp.Devices.Virtio.Console;
using VmmSharp.Devices.Virtio.Mmio;
using VmmSharp.Devices.Virtio.Rng;
using VmmSharp.Fuzz.Support;
using VmmSharp.Memory;
using VmmSharp.State;

namespace VmmSharp.Fuzz.Targets.State;

/// <summary>
/// Restoring a device from a saved state, as a user-controlled snapshot file gives it. Input: byte 0 picks the device
/// (0 the 8250, 1 the i8042, 2 the CMOS RTC, 3 fw_cfg, 4 virtio-rng behind virtio-mmio, 5 virtio-console behind
/// virtio-mmio), the rest is the device's section (version, length, fields). The only refusal allowed is
/// <see cref="StateFormatException"/>. Invariants: a state that is taken saves back to a state that restores to the same
/// state again (save, restore, save gives the same bytes); a restored virtio device then serves a notification over
/// guest memory holding the input, touching nothing outside it.
/// </summary>
internal sealed class DeviceStateTarget : IFuzzTarget
{
    private const int Window = 0x10000;

    // Made on the first input, not at construction: listing the targets must run no instrumented VmmSharp code.
    private static Devices? _devices;

    public string Name => "device-state";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }
        Devices devices = _devices ??= new Devices();
        IStateful device = devices.Pick(input[0]);
        if (!Restore(device, input[1..]))
        {
            return;
        }
        var first = new StateWriter();
        first.WriteSection(device);
        FuzzCheckException.Check(Restore(device, first.WrittenSpan), "a state the device saved itself was refused");
        var second = new StateWriter();
        second.WriteSection(device);
        FuzzCheckException.Check(first.WrittenSpan.SequenceEqual(second.WrittenSpan), "save, restore, save changed the state");

        if (device is VirtioMmioTransport transport)
        {
            // Serve whatever the restored queues point at, over RAM holding the input.
            devices.Memory.Fill(0, Window, 0);
            devices.Memory.Write(0, input[..Math.Min(input.Length, Window)]);
            transport.OnNotifyEvent();
            transport.Device.Reset();
        }
    }

    public IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        var devices = new Devices();
        for (byte pick = 0; pick < Devices.Count; pick++)
        {
            IStateful device = devices.Pick(pick);
            if (device is VirtioMmioTransport transport)
            {
                var driver = new MmioDriverSteps(transport);
                driver.Start();
                devices.Memory.Write<ulong>(0x1000, 0x8000); // descriptor 0: 64 device-writable bytes at 0x8000
                devices.Memory.Write<uint>(0x1000 + 8, 64);
                devices.Memory.Write<ushort>(0x1000 + 12, 2);
                devices.Memory.Write<ushort>(0x2000 + 4, 0);
                devices.Memory.Write<ushort>(0x2000 + 2, 1);
                transport.OnNotifyEvent();
            }
            var writer = new StateWriter();
            writer.WriteSection(device);
            yield return ($"{pick}.bin", [pick, .. writer.WrittenSpan]);
        }
    }

    private static bool Restore(IStateful device, ReadOnlySpan<byte> state)
    {
        try
        {
            var reader = new StateReader(state, "fuzz");
            reader.ReadSection(device, "device");
            return true;
        }
        catch (StateFormatException e)
        {
            Rejection.Note(e);
            return false;
        }
    }

    /// <summary>One of each device, kept from input to input (each restore replaces the whole state).</summary>
    private sealed class Devices
    {
        public const int Count = 6;

        private readonly IStateful[] _devices;

        public Devices()
        {
            Memory = new GuestMemory(new GuestRegionSpec(0, Window), new GuestRegionSpec(0x20000, 0x10000));
            var output = new ConsoleOutput(Stream.Null);
            _devices =
            [
                new Serial8250(output, new RecordingIrqLine()),
                new I8042(() => { }, new RecordingIrqLine(), new RecordingIrqLine()),
                new CmosRtc(64 << 20, 0, new FixedTime(new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero))),
                new FwCfg(new FwCfgOptions { CpuCount = 1, RamSize = 64 << 20, CommandLine = "console=ttyS0" }),
                new VirtioMmioTransport(new VirtioRng(), Memory, 0xd000_0000, new RecordingIrqLine()),
                new VirtioMmioTransport(new VirtioConsole(output), Memory, 0xd000_1000, new RecordingIrqLine()),
            ];
        }

        public GuestMemory Memory { get; }

        public IStateful Pick(byte selector) => _devices[selector % Count];
    }

    /// <summary>A driver's handshake for the seeds: VERSION_1 and EVENT_IDX, queue 0 of 16 at 0x1000/0x2000/0x3000, DRIVER_OK.</summary>
    private sealed class MmioDriverSteps(VirtioMmioTransport transport)
    {
        public void Start()
        {
            Write(0x70, 0);
            Write(0x70, 3);
            Write(0x24, 0);
            Write(0x20, (uint)VirtioFeatures.RingEventIdx);
            Write(0x24, 1);
            Write(0x20, (uint)(VirtioFeatures.Version1 >> 32));
            Write(0x70, 11);
            Write(0x30, 0);
            Write(0x38, 16);
            Write(0x80, 0x1000);
            Write(0x90, 0x2000);
            Write(0xa0, 0x3000);
            Write(0x44, 1);
            Write(0x70, 15);
        }

        private void Write(uint offset, uint value) => transport.Write(offset, BitConverter.GetBytes(value));
    }
}

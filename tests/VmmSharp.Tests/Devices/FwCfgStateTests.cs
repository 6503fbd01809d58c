using VmmSharp.Devices.Legacy;

namespace VmmSharp.Tests.Devices;

public class FwCfgStateTests
{
    private static readonly FwCfgOptions Machine = new() { CpuCount = 2, RamSize = 64 << 20, CommandLine = "console=ttyS0" };

    private static void Select(FwCfg device, ushort key) => device.Write(0, BitConverter.GetBytes(key));

    private static byte ReadByte(FwCfg device)
    {
        Span<byte> b = stackalloc byte[1];
        device.Read(1, b);
        return b[0];
    }

    [Fact]
    public void The_selected_item_reads_on_where_it_left_off()
    {
        var device = new FwCfg(Machine);
        Select(device, FwCfgKeys.CommandLineData);
        Assert.Equal((byte)'c', ReadByte(device));
        Assert.Equal((byte)'o', ReadByte(device));
        var fresh = new FwCfg(Machine);

        StateRoundTrip.Copy(device, fresh);

        Assert.Equal((byte)'n', ReadByte(fresh));
        Assert.Equal((byte)'s', ReadByte(fresh));
    }

    [Fact]
    public void An_offset_past_the_rebuilt_item_is_refused()
    {
        var device = new FwCfg(Machine);
        Select(device, FwCfgKeys.CommandLineData);
        for (int i = 0; i < 10; i++)
        {
            _ = ReadByte(device);
        }
        // The same item, rebuilt from a shorter command line, cannot be 10 bytes in.
        var other = new FwCfg(Machine with { CommandLine = "quiet" });
        Assert.Contains("offset 10", StateRoundTrip.Refused(other, StateRoundTrip.Save(device)), StringComparison.Ordinal);
        Assert.Equal((byte)'Q', ReadByte(other)); // left on the signature, as at reset
    }

    [Fact]
    public void Acpi_sleep_control_has_an_empty_state_of_its_own_version()
    {
        var acpi = new AcpiSleepControl(_ => { });
        byte[] state = StateRoundTrip.Save(acpi);
        Assert.Equal(6, state.Length);
        StateRoundTrip.Restore(new AcpiSleepControl(_ => { }), state);
        Assert.Contains("version 2", StateRoundTrip.Refused(acpi, StateRoundTrip.WithVersion(state, 2)), StringComparison.Ordinal);
    }
}

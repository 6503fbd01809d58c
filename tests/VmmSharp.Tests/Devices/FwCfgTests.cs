using System.Buffers.Binary;
using System.Text;
using VmmSharp.Devices.Legacy;
using Xunit;

namespace VmmSharp.Tests.Devices;

public class FwCfgTests
{
    private static readonly FwCfgOptions Machine = new()
    {
        CpuCount = 2,
        MaxCpus = 4,
        RamSize = 512UL << 20,
        KernelAddress = 0x10_0000,
        KernelSize = 0x1234,
        InitrdAddress = 0x0700_0000,
        InitrdSize = 0x5678,
        CommandLine = "console=ttyS0",
        CommandLineAddress = 0x2_0000,
    };

    private static void Select(FwCfg device, ushort key)
    {
        Span<byte> selector = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(selector, key);
        device.Write(0, selector);
    }

    private static byte[] ReadItem(FwCfg device, ushort key, int length)
    {
        Select(device, key);
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            device.Read(1, bytes.AsSpan(i, 1));
        }
        return bytes;
    }

    private static uint ReadU32(FwCfg device, ushort key) => BinaryPrimitives.ReadUInt32LittleEndian(ReadItem(device, key, 4));

    private static ushort ReadU16(FwCfg device, ushort key) => BinaryPrimitives.ReadUInt16LittleEndian(ReadItem(device, key, 2));

    [Fact]
    public void Signature_reads_QEMU()
    {
        Assert.Equal("QEMU"u8.ToArray(), ReadItem(new FwCfg(Machine), FwCfgKeys.Signature, 4));
    }

    [Fact]
    public void Id_offers_the_traditional_interface_without_DMA()
    {
        Assert.Equal(1u, ReadU32(new FwCfg(Machine), FwCfgKeys.Id));
    }

    [Fact]
    public void Ram_size_is_a_little_endian_u64()
    {
        Assert.Equal(512UL << 20, BinaryPrimitives.ReadUInt64LittleEndian(ReadItem(new FwCfg(Machine), FwCfgKeys.RamSize, 8)));
    }

    [Fact]
    public void Cpu_counts_are_u16()
    {
        var device = new FwCfg(Machine);
        Assert.Equal(2, ReadU16(device, FwCfgKeys.NbCpus));
        Assert.Equal(4, ReadU16(device, FwCfgKeys.MaxCpus));
    }

    [Fact]
    public void Max_cpus_defaults_to_the_cpu_count()
    {
        var device = new FwCfg(Machine with { MaxCpus = null });
        Assert.Equal(2, ReadU16(device, FwCfgKeys.MaxCpus));
    }

    [Fact]
    public void No_graphic_is_set_for_a_serial_console_machine()
    {
        Assert.Equal(1, ReadU16(new FwCfg(Machine), FwCfgKeys.NoGraphic));
    }

    [Fact]
    public void Uuid_defaults_to_zeros()
    {
        Assert.Equal(new byte[16], ReadItem(new FwCfg(Machine), FwCfgKeys.Uuid, 16));
    }

    [Fact]
    public void Kernel_and_initrd_addresses_and_sizes_are_u32()
    {
        var device = new FwCfg(Machine);
        Assert.Equal(0x10_0000u, ReadU32(device, FwCfgKeys.KernelAddress));
        Assert.Equal(0x1234u, ReadU32(device, FwCfgKeys.KernelSize));
        Assert.Equal(0x0700_0000u, ReadU32(device, FwCfgKeys.InitrdAddress));
        Assert.Equal(0x5678u, ReadU32(device, FwCfgKeys.InitrdSize));
    }

    [Fact]
    public void Command_line_items_include_the_NUL()
    {
        var device = new FwCfg(Machine);
        Assert.Equal(0x2_0000u, ReadU32(device, FwCfgKeys.CommandLineAddress));
        Assert.Equal(0x2_0000u, ReadU32(device, FwCfgKeys.KernelCommandLine));
        Assert.Equal(14u, ReadU32(device, FwCfgKeys.CommandLineSize));
        Assert.Equal("console=ttyS0\0"u8.ToArray(), ReadItem(device, FwCfgKeys.CommandLineData, 14));
    }

    [Fact]
    public void Kernel_setup_and_initrd_data_items_hold_the_bytes_given()
    {
        var device = new FwCfg(Machine with { KernelData = [1, 2, 3], InitrdData = [4, 5], SetupData = [6, 7, 8, 9], SetupAddress = 0x9_0000 });

        Assert.Equal(new byte[] { 1, 2, 3 }, ReadItem(device, FwCfgKeys.KernelData, 3));
        Assert.Equal(new byte[] { 4, 5 }, ReadItem(device, FwCfgKeys.InitrdData, 2));
        Assert.Equal(new byte[] { 6, 7, 8, 9 }, ReadItem(device, FwCfgKeys.SetupData, 4));
        Assert.Equal(4u, ReadU32(device, FwCfgKeys.SetupSize));
        Assert.Equal(0x9_0000u, ReadU32(device, FwCfgKeys.SetupAddress));
    }

    [Fact]
    public void Kernel_items_are_absent_without_a_kernel()
    {
        var device = new FwCfg(new FwCfgOptions { CpuCount = 1, RamSize = 1UL << 20 });
        Assert.Equal(new byte[4], ReadItem(device, FwCfgKeys.KernelSize, 4));
        Assert.Equal(new byte[4], ReadItem(device, FwCfgKeys.CommandLineSize, 4));
    }

    [Fact]
    public void Reading_past_the_end_of_an_item_returns_zeros()
    {
        Assert.Equal("QEMU\0\0\0"u8.ToArray(), ReadItem(new FwCfg(Machine), FwCfgKeys.Signature, 7));
    }

    [Fact]
    public void Selecting_again_restarts_the_item()
    {
        var device = new FwCfg(Machine);
        ReadItem(device, FwCfgKeys.Signature, 2);
        Assert.Equal("QEMU"u8.ToArray(), ReadItem(device, FwCfgKeys.Signature, 4));
    }

    [Fact]
    public void Signature_is_selected_at_reset()
    {
        var device = new FwCfg(Machine);
        Span<byte> data = stackalloc byte[1];
        device.Read(1, data);
        Assert.Equal((byte)'Q', data[0]);
    }

    [Fact]
    public void Unknown_and_arch_local_selectors_read_zeros()
    {
        var device = new FwCfg(Machine);
        Assert.Equal(new byte[4], ReadItem(device, 0x1ff, 4));
        Assert.Equal(new byte[4], ReadItem(device, 0x8000, 4));
    }

    [Fact]
    public void Empty_file_directory_is_a_zero_count()
    {
        Assert.Equal(new byte[4], ReadItem(new FwCfg(Machine), FwCfgKeys.FileDir, 4));
    }

    [Fact]
    public void File_directory_lists_files_in_name_order_big_endian()
    {
        var device = new FwCfg(Machine);
        device.AddFile("opt/b", [1, 2, 3]);
        device.AddFile("etc/a", [9]);

        byte[] dir = ReadItem(device, FwCfgKeys.FileDir, 4 + (2 * 64));

        Assert.Equal(2u, BinaryPrimitives.ReadUInt32BigEndian(dir));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32BigEndian(dir.AsSpan(4)));
        Assert.Equal(0x20, BinaryPrimitives.ReadUInt16BigEndian(dir.AsSpan(8)));
        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(dir.AsSpan(10)));
        Assert.Equal("etc/a", Encoding.UTF8.GetString(dir, 12, 56).TrimEnd('\0'));
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32BigEndian(dir.AsSpan(68)));
        Assert.Equal(0x21, BinaryPrimitives.ReadUInt16BigEndian(dir.AsSpan(72)));
        Assert.Equal("opt/b", Encoding.UTF8.GetString(dir, 76, 56).TrimEnd('\0'));
    }

    [Fact]
    public void File_contents_read_through_their_selector()
    {
        var device = new FwCfg(Machine);
        device.AddFile("etc/a", [9, 8, 7]);
        Assert.Equal(new byte[] { 9, 8, 7, 0 }, ReadItem(device, 0x20, 4));
    }

    [Fact]
    public void Duplicate_file_name_is_rejected()
    {
        var device = new FwCfg(Machine);
        device.AddFile("etc/a", []);
        ArgumentException error = Assert.Throws<ArgumentException>(() => device.AddFile("etc/a", []));
        Assert.Contains("etc/a", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void File_name_longer_than_55_bytes_is_rejected()
    {
        var device = new FwCfg(Machine);
        device.AddFile(new string('x', 55), []);
        Assert.Throws<ArgumentException>(() => device.AddFile(new string('y', 56), []));
    }

    [Fact]
    public void Wide_reads_return_all_ones_and_do_not_advance()
    {
        var device = new FwCfg(Machine);
        byte[] wide = new byte[2];
        device.Read(1, wide);
        Assert.Equal(new byte[] { 0xff, 0xff }, wide);
        Assert.Equal("QEMU"u8.ToArray(), ReadItem(device, FwCfgKeys.Signature, 4));
    }

    [Fact]
    public void Random_guest_accesses_never_throw()
    {
        var device = new FwCfg(Machine);
        device.AddFile("etc/a", [1]);
        var random = new Random(0x510);
        byte[] buffer = new byte[4];
        for (int i = 0; i < 5000; i++)
        {
            random.NextBytes(buffer);
            var offset = (ushort)random.Next(0, 3);
            int width = 1 << random.Next(0, 3);
            if (random.Next(2) == 0)
            {
                device.Write(offset, buffer.AsSpan(0, width));
            }
            else
            {
                device.Read(offset, buffer.AsSpan(0, width));
            }
        }
    }
}

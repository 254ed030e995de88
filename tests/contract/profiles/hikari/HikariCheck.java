// Binds poolguard's SpringHikari environment variables to a HikariConfig with Spring Boot's own Binder (the relaxed
// binding a Spring Boot application applies to spring.datasource.hikari.*), then prints what HikariCP holds.
// HikariConfig.validate() applies HikariCP's own corrections (minimums), so the printed values are the effective ones.
// With the argument "session" a HikariDataSource of that configuration connects through PgJDBC (jdbcUrl, username
// and password bound from the environment too) and it prints what a session reports and what became of a
// transaction left idle for IDLE_SLEEP_MS.
import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.TreeSet;
import org.springframework.boot.context.properties.bind.Bindable;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.core.env.StandardEnvironment;

public final class HikariCheck {
  public static void main(String[] args) throws Exception {
    HikariConfig config = new HikariConfig();
    config.setJdbcUrl("jdbc:postgresql://127.0.0.1:5432/orders");
    Binder.get(new StandardEnvironment()).bind("spring.datasource.hikari", Bindable.ofInstance(config));
    config.validate();
    if (args.length > 0 && args[0].equals("session")) {
      session(config);
      return;
    }
    System.out.println("maximumPoolSize=" + config.getMaximumPoolSize());
    System.out.println("minimumIdle=" + config.getMinimumIdle());
    System.out.println("connectionTimeout=" + config.getConnectionTimeout());
    System.out.println("idleTimeout=" + config.getIdleTimeout());
    System.out.println("maxLifetime=" + config.getMaxLifetime());
    System.out.println("leakDetectionThreshold=" + config.getLeakDetectionThreshold());
    System.out.println("connectionInitSql=" + config.getConnectionInitSql());
    // Map keys bound from environment variables arrive lower-cased; PgJDBC would not recognise "applicationname",
    // and does recognise "options".
    System.out.println("dataSourceProperties=" + new TreeSet<>(config.getDataSourceProperties().stringPropertyNames()));
    System.out.println("options=" + config.getDataSourceProperties().getProperty("options"));
  }

  private static void session(HikariConfig config) throws Exception {
    try (HikariDataSource pool = new HikariDataSource(config);
        Connection connection = pool.getConnection()) {
      try (Statement st = connection.createStatement();
          ResultSet rs = st.executeQuery("SHOW idle_in_transaction_session_timeout")) {
        rs.next();
        System.out.println("idle_in_transaction_session_timeout=" + rs.getString(1));
      }
      connection.setAutoCommit(false);
      try (Statement st = connection.createStatement()) {
        st.execute("SELECT 1");
      }
      Thread.sleep(Long.parseLong(System.getenv("IDLE_SLEEP_MS")));
      try (Statement st = connection.createStatement()) {
        st.execute("SELECT 1");
        System.out.println("after_idle=ok");
      } catch (SQLException e) {
        System.out.println("after_idle=error: " + e.getMessage().replace('\n', ' '));
      }
    }
  }
}

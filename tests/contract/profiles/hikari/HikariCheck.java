// Binds poolguard's SpringHikari environment variables to a HikariConfig with Spring Boot's own Binder (the relaxed
// binding a Spring Boot application applies to spring.datasource.hikari.*), then prints what HikariCP holds.
// HikariConfig.validate() applies HikariCP's own corrections (minimums), so the printed values are the effective ones.
import com.zaxxer.hikari.HikariConfig;
import org.springframework.boot.context.properties.bind.Bindable;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.core.env.StandardEnvironment;

public final class HikariCheck {
  public static void main(String[] args) {
    HikariConfig config = new HikariConfig();
    config.setJdbcUrl("jdbc:postgresql://127.0.0.1:5432/orders");
    Binder.get(new StandardEnvironment()).bind("spring.datasource.hikari", Bindable.ofInstance(config));
    config.validate();
    System.out.println("maximumPoolSize=" + config.getMaximumPoolSize());
    System.out.println("minimumIdle=" + config.getMinimumIdle());
    System.out.println("connectionTimeout=" + config.getConnectionTimeout());
    System.out.println("idleTimeout=" + config.getIdleTimeout());
    System.out.println("maxLifetime=" + config.getMaxLifetime());
    System.out.println("leakDetectionThreshold=" + config.getLeakDetectionThreshold());
    System.out.println("connectionInitSql=" + config.getConnectionInitSql());
    // Map keys bound from environment variables arrive lower-cased; PgJDBC would not recognise "applicationname".
    System.out.println("dataSourceProperties=" + config.getDataSourceProperties().stringPropertyNames());
  }
}
